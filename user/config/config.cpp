#include "config/config.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "top/top_model.h"

namespace vmscope {

Result<AttachMode> parse_attach_mode(std::string_view s) {
  if (s == "auto") return AttachMode::kAuto;
  if (s == "tcx") return AttachMode::kTcx;
  if (s == "clsact") return AttachMode::kClsact;
  return Error::msg(fmt::format("attach mode \"{}\": expected auto, tcx or clsact", s));
}

Status validate(const Config& c) {
  if (!(c.interval_s >= 0.01 && c.interval_s <= 3600))
    return Error::msg(
        fmt::format("interval {}: must be between 0.01 and 3600 seconds", c.interval_s));
  if (spdlog::level::from_str(c.log_level) == spdlog::level::off && c.log_level != "off")
    return Error::msg(
        fmt::format("log level \"{}\": expected trace, debug, info, warn, error, critical or off",
                    c.log_level));
  for (const auto& o : c.overrides)
    if (std::string err = validate_override(o); !err.empty())
      return Error::msg(fmt::format("override for \"{}\": {}", o.name, err));
  return {};
}

namespace {

// Typed read of an optional key: a present key of the wrong type is an error.
template <typename T>
Status read_key(const toml::table& t, std::string_view key, std::string_view where, T& out) {
  const toml::node* n = t.get(key);
  if (!n) return {};
  auto v = n->value_exact<T>();  // no silent int -> bool or string conversions
  if (!v) return Error::msg(fmt::format("{}: key \"{}\" has the wrong type", where, key));
  out = *v;
  return {};
}

}  // namespace

Result<Config> apply_toml(std::string_view toml_text, std::string_view source, Config c) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Error::msg(fmt::format("{}:{}:{}: {}", source, b.line, b.column, e.description()));
  }
  static const std::set<std::string_view> known = {"interval",  "count",  "outputs", "log_level",
                                                   "drop_path", "attach", "http",    "override"};
  for (const auto& [k, _] : root)
    if (!known.count(k.str()))
      return Error::msg(fmt::format("{}: unknown key \"{}\"", source, k.str()));

  std::string where(source);
  if (const toml::node* n = root.get("interval")) {
    auto v = n->value<double>();  // accepts integers too
    if (!v) return Error::msg(fmt::format("{}: key \"interval\" must be a number", where));
    c.interval_s = *v;
  }
  int64_t count = static_cast<int64_t>(c.count);
  if (auto st = read_key(root, "count", where, count); !st) return st.error();
  if (count < 0) return Error::msg(fmt::format("{}: key \"count\" must be >= 0", where));
  c.count = static_cast<uint64_t>(count);
  if (auto st = read_key(root, "log_level", where, c.log_level); !st) return st.error();
  if (auto st = read_key(root, "drop_path", where, c.drop_path); !st) return st.error();
  std::string attach = attach_mode_name(c.attach_mode);
  if (auto st = read_key(root, "attach", where, attach); !st) return st.error();
  auto mode = parse_attach_mode(attach);
  if (!mode) return mode.error().context(where);
  c.attach_mode = *mode;

  if (const toml::node* n = root.get("outputs")) {
    const toml::array* arr = n->as_array();
    if (!arr) return Error::msg(fmt::format("{}: key \"outputs\" must be an array of URLs", where));
    c.outputs.clear();
    for (const auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s) return Error::msg(fmt::format("{}: key \"outputs\" must hold strings", where));
      c.outputs.push_back(*s);
    }
  }
  if (const toml::node* n = root.get("http")) {
    const toml::table* http = n->as_table();
    if (!http) return Error::msg(fmt::format("{}: \"http\" must be a table", where));
    for (const auto& [k, _] : *http)
      if (k.str() != "username" && k.str() != "password")
        return Error::msg(fmt::format("{}: unknown key \"http.{}\"", where, k.str()));
    if (auto st = read_key(*http, "username", where, c.http_username); !st) return st.error();
    if (auto st = read_key(*http, "password", where, c.http_password); !st) return st.error();
  }
  if (const toml::node* n = root.get("override")) {
    const toml::array* arr = n->as_array();
    if (!arr) return Error::msg(fmt::format("{}: \"override\" must be [[override]] tables", where));
    c.overrides.clear();
    for (const auto& e : *arr) {
      const toml::table* t = e.as_table();
      if (!t) return Error::msg(fmt::format("{}: \"override\" must be [[override]] tables", where));
      for (const auto& [k, _] : *t)
        if (k.str() != "tap" && k.str() != "process" && k.str() != "name" && k.str() != "bridge")
          return Error::msg(fmt::format("{}: unknown key \"override.{}\"", where, k.str()));
      NameOverride o;
      if (auto st = read_key(*t, "tap", where, o.tap); !st) return st.error();
      if (auto st = read_key(*t, "process", where, o.process_regex); !st) return st.error();
      if (auto st = read_key(*t, "name", where, o.name); !st) return st.error();
      if (auto st = read_key(*t, "bridge", where, o.bridge); !st) return st.error();
      c.overrides.push_back(std::move(o));
    }
  }
  if (auto st = validate(c); !st) return st.error().context(where);
  return c;
}

namespace {

// "cpu, mem, ..., uptime": the keys --sort accepts, from the one list top sorts by.
std::string sort_key_list() {
  std::vector<std::string_view> names;
  for (SortKey k : sort_keys()) names.push_back(sort_key_name(k));
  return fmt::format("{}", fmt::join(names, ", "));
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::from_errno(fmt::format("read config {}", path), errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ParseOutcome parse_command_line(const std::vector<std::string>& args) {
  CLI::App app{"vmscope: host-side monitor for virtual machines", "vmscope"};
  app.require_subcommand(1);
  app.fallthrough();  // `vmscope run --log-level debug` as well as `vmscope --log-level debug run`
  std::string log_level;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off");

  Config flags;
  std::string config_file, attach;
  bool no_drop_path = false;
  auto add_naming = [&](CLI::App* sub) {
    sub->add_flag("--no-drop-path", no_drop_path,
                  "name albatross VMs by their full path a:b, not the last label");
    sub->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  };
  CLI::App* run = app.add_subcommand("run", "collect and emit metrics every interval");
  run->add_option("--interval", flags.interval_s, "seconds between ticks (default 1)");
  int64_t count = 0;
  run->add_option("--count", count, "stop after N ticks (default: run until signalled)");
  run->add_option("--output", flags.outputs,
                  "-, tcp://HOST[:PORT], udp://HOST[:PORT], http://HOST:PORT/write?db=NAME "
                  "(repeatable; default -)");
  run->add_option("--attach", attach, "how to attach tc programs: auto, tcx or clsact");
  add_naming(run);
  CLI::App* list = app.add_subcommand("list", "list the VMs found on this host");
  add_naming(list);
  TopOptions top_opts;
  double delay = 0;
  int64_t iterations = 0;
  CLI::App* top = app.add_subcommand("top", "live view of every VM (keys: h for help)");
  top->add_flag("-b,--batch", top_opts.batch, "print plain-text snapshots instead of a screen");
  top->add_option("-n,--iterations", iterations, "snapshots before exiting (default: until q)");
  top->add_option("-d,--delay", delay, "seconds between updates (default 1)");
  top->add_option("--sort", top_opts.sort, sort_key_list() + " (default cpu)");
  top->add_option("--filter", top_opts.filter, "show only VMs whose name contains this");
  top->add_option("--attach", attach, "when attaching its own programs: auto, tcx or clsact");
  bool own = false;
  top->add_flag("--own", own, "attach own programs even when a vmscope run is active");
  add_naming(top);

  std::vector<std::string> rev(args.rbegin(), args.rend());
  if (!rev.empty()) rev.pop_back();  // program name
  ParseOutcome out;
  try {
    app.parse(rev);
  } catch (const CLI::Success& e) {  // --help
    std::ostringstream help;
    app.exit(e, help, help);
    out.message = help.str();
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_code = 2;
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    out.message = fmt::format("vmscope: {}", what);
    return out;
  }

  CommandLine cli;
  cli.command = list->parsed() ? Command::kList : top->parsed() ? Command::kTop : Command::kRun;
  Config c;
  if (!config_file.empty()) {
    auto text = read_file(config_file);
    if (!text) {
      out.exit_code = 2;
      out.message = "vmscope: " + text.error().message;
      return out;
    }
    auto parsed = apply_toml(*text, config_file, c);
    if (!parsed) {
      out.exit_code = 2;
      out.message = "vmscope: " + parsed.error().message;
      return out;
    }
    c = std::move(*parsed);
  }
  // Flags given on the command line win over the file.
  if (run->count("--interval")) c.interval_s = flags.interval_s;
  if (run->count("--count")) {
    if (count < 0) {
      out.exit_code = 2;
      out.message = fmt::format("vmscope: --count {}: must be >= 0", count);
      return out;
    }
    c.count = static_cast<uint64_t>(count);
  }
  if (run->count("--output")) c.outputs = flags.outputs;
  if (top->parsed()) {
    if (top->count("--delay")) c.interval_s = delay;
    if (iterations < 0) {
      out.exit_code = 2;
      out.message = fmt::format("vmscope: --iterations {}: must be >= 0", iterations);
      return out;
    }
    top_opts.iterations = static_cast<uint64_t>(iterations);
    top_opts.shared = !own;
    if (!parse_sort_key(top_opts.sort)) {
      out.exit_code = 2;
      out.message =
          fmt::format("vmscope: --sort {}: expected one of {}", top_opts.sort, sort_key_list());
      return out;
    }
    if (top->count("--delay") && !(delay >= 0.1 && delay <= 3600)) {
      out.exit_code = 2;
      out.message = fmt::format("vmscope: --delay {}: must be between 0.1 and 3600 seconds", delay);
      return out;
    }
    cli.top = top_opts;
  }
  if (!log_level.empty())
    c.log_level = log_level;
  else if (top->parsed())
    c.log_level = "warn";  // top's own output is the screen; only trouble is worth a line
  if (no_drop_path) c.drop_path = false;
  if (!attach.empty()) {
    auto mode = parse_attach_mode(attach);
    if (!mode) {
      out.exit_code = 2;
      out.message = "vmscope: --attach: " + mode.error().message;
      return out;
    }
    c.attach_mode = *mode;
  }
  if (auto st = validate(c); !st) {
    out.exit_code = 2;
    out.message = "vmscope: " + st.error().message;
    return out;
  }
  if (c.outputs.empty()) c.outputs.push_back("-");
  cli.config = std::move(c);
  out.cli = std::move(cli);
  return out;
}

}  // namespace vmscope
