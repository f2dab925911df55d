// Fuzz target: the command line, as main hands it to parse_command_line. The input is the
// arguments after the program name, separated by NUL bytes (as in /proc/<pid>/cmdline).
// Every outcome is a command with a valid configuration, help text (exit 0) or one error
// line (exit 2); an exception escaping CLI11 would be a crash of main.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args{"vmscope"};
  if (!text.empty())
    for (std::string_view arg : vmscope::fuzz::split(text, '\0')) {
      // --config opens the file it names: a fuzzer-made path could be /dev/zero. The file's
      // text has its own target (config_toml_fuzz.cpp).
      if (arg.find("config") != std::string_view::npos) return 0;
      args.emplace_back(arg);
    }
  const vmscope::ParseOutcome out = vmscope::parse_command_line(args);
  if (out.cli) {
    FUZZ_CHECK(out.exit_code == 0);
    if (out.cli->command != vmscope::Command::kVersion) {
      FUZZ_CHECK(vmscope::validate(out.cli->config));
      FUZZ_CHECK(!out.cli->config.outputs.empty());  // "-" when none was given
    }
  } else if (out.exit_code == 2) {
    FUZZ_CHECK(out.message.starts_with("vmscope: "));
    FUZZ_CHECK(out.message.find('\n') == std::string::npos);  // one line
  } else {
    FUZZ_CHECK(out.exit_code == 0 && !out.message.empty());  // --help
  }
  return 0;
}
