// vmscope entry point: the only place that turns errors into messages and exit codes.
// Exit codes: 0 done, 1 runtime failure, 2 bad command line or configuration.
#include <bpf/libbpf.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "agent/agent.h"
#include "agent/host_check.h"
#include "agent/options.h"
#include "attach/cleanup.h"
#include "config/config.h"
#include "top/top.h"
#include "version.h"

namespace {

// libbpf's own messages, through our logger: its warnings are ours, the rest is debug.
int libbpf_to_spdlog(libbpf_print_level level, const char* fmt, va_list args) {
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  std::string_view msg(buf, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1) : 0);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  // Kernel extack notes (e.g. "Exclusivity flag on" for a clsact hook that already
  // exists) accompany errors we report ourselves with context.
  bool note = msg.find("Kernel error message") != std::string_view::npos;
  auto lvl = level == LIBBPF_WARN && !note ? spdlog::level::warn
             : level == LIBBPF_INFO        ? spdlog::level::debug
                                           : spdlog::level::trace;
  spdlog::log(lvl, "libbpf: {}", msg);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr: stdout carries line protocol.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vmscope"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  const std::vector<std::string> args(argv, argv + argc);
  vmscope::ParseOutcome parsed = vmscope::parse_command_line(args);
  if (!parsed.cli) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    if (!parsed.message.empty() && parsed.message.back() != '\n')
      std::fputc('\n', parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const vmscope::Config& config = parsed.cli->config;
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  libbpf_set_print(libbpf_to_spdlog);

  if (parsed.cli->command == vmscope::Command::kVersion) {
    std::printf("vmscope %s (%s), BPF types from kernel %s\n", VMSCOPE_VERSION,
                VMSCOPE_GIT_DESCRIBE, VMSCOPE_VMLINUX_KERNEL);
    return 0;
  }

  if (parsed.cli->command == vmscope::Command::kCheck) {
    const auto lines = vmscope::check_host();
    for (const auto& l : lines) std::printf("%s\n", vmscope::format_check_line(l).c_str());
    return vmscope::first_failure(lines) ? 1 : 0;
  }

  if (parsed.cli->command == vmscope::Command::kCleanup) {
    if (auto st = vmscope::cleanup_kept_state(parsed.cli->cleanup_all_namespaces, stdout); !st) {
      std::fprintf(stderr, "vmscope: %s\n", st.error().message.c_str());
      return 1;
    }
    return 0;
  }

  if (parsed.cli->command == vmscope::Command::kList) {
    if (auto st = vmscope::list_vms(config, stdout); !st) {
      std::fprintf(stderr, "vmscope: %s\n", st.error().message.c_str());
      return 1;
    }
    return 0;
  }

  if (parsed.cli->command == vmscope::Command::kTop) {
    if (auto st = vmscope::run_top(config, parsed.cli->top, stdout); !st) {
      std::fprintf(stderr, "vmscope: %s\n", st.error().message.c_str());
      return 1;
    }
    return 0;
  }

  const vmscope::SinkOptions sink_opts = vmscope::sink_options(config);
  // A bad output URL costs that output, not the others: one line naming it, and the agent
  // runs with the rest (exit 2 only when none is left).
  std::vector<std::unique_ptr<vmscope::Sink>> sinks;
  for (const auto& url : config.outputs) {
    auto sink = vmscope::make_sink(url, sink_opts);
    if (!sink) {
      spdlog::error("{}: output skipped", sink.error().message);
      continue;
    }
    sinks.push_back(std::move(*sink));
  }
  if (sinks.empty()) {
    std::fprintf(stderr, "vmscope: no usable output\n");
    return 2;
  }
  if (auto st = vmscope::run_agent(config, std::move(sinks), args); !st) {
    std::fprintf(stderr, "vmscope: %s\n", st.error().message.c_str());
    return 1;
  }
  return 0;
}
