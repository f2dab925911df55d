#include "config/config.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "output/metrics_server.h"
#include "output/output_tags.h"

namespace vmscope {

namespace {

// what: how the user wrote it ("net_slots", "--net-slots"), for the one error line.
Status check_net_slots(int64_t v, std::string_view what) {
  if (v == 0 || (v >= kMinSlots && v <= kMaxSlots)) return {};
  return Error::msg(fmt::format("{} {}: must be 0 (from the host) or between {} and {}", what, v,
                                kMinSlots, kMaxSlots));
}

// The token goes into a header: a control character or space would end or split it. The
// message never shows the token. (tls_ca_file is checked by the https outputs that use it.)
Status check_http_secrets(const Config& c) {
  for (unsigned char ch : c.http_token)
    if (ch <= ' ' || ch == 0x7f)
      return Error::msg(
          fmt::format("http token (config http.token or {}): contains a space or control character",
                      kTokenEnv));
  return {};
}

}  // namespace

Status validate(const Config& c) {
  if (!(c.interval_s >= 0.01 && c.interval_s <= 3600))
    return Error::msg(
        fmt::format("interval {}: must be between 0.01 and 3600 seconds", c.interval_s));
  if (spdlog::level::from_str(c.log_level) == spdlog::level::off && c.log_level != "off")
    return Error::msg(
        fmt::format("log level \"{}\": expected trace, debug, info, warn, error, critical or off",
                    c.log_level));
  if (auto st = check_net_slots(c.net_slots, "net_slots"); !st) return st;
  for (const auto& o : c.overrides)
    if (std::string err = validate_override(o); !err.empty())
      return Error::msg(fmt::format("override for \"{}\": {}", o.name, err));
  if (!c.listen.empty())
    if (auto a = parse_listen_address(c.listen); !a) return a.error();
  if (auto st = check_http_secrets(c); !st) return st;
  for (const auto& [key, value] : c.tags)
    if (auto st = validate_tag(key, value); !st) return st;
  if (c.host_tag && !c.hostname.empty())
    if (auto st = validate_tag("hostname", c.hostname); !st)
      return Error::msg(
          fmt::format("hostname \"{}\": no control characters, no final backslash", c.hostname));
  if (c.spool_dir.empty() || c.spool_dir.front() != '/')
    return Error::msg(fmt::format("spool dir \"{}\": must be an absolute path", c.spool_dir));
  if (c.spool_max_bytes != 0 && c.spool_max_bytes < (uint64_t{1} << 20))
    return Error::msg(fmt::format("spool max size {} bytes: must be 0 (no spool) or at least 1MiB",
                                  c.spool_max_bytes));
  return {};
}

Result<uint64_t> parse_size(std::string_view text) {
  const auto bad = [&] {
    return Error::msg(fmt::format(
        "size \"{}\": expected bytes with an optional K, KiB, M, MiB, G or GiB suffix", text));
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15) return bad();  // 15 digits: no overflow below
  uint64_t v = 0;
  for (char ch : text.substr(0, digits)) v = v * 10 + static_cast<uint64_t>(ch - '0');
  const std::string_view unit = text.substr(digits);
  int shift = 0;
  if (unit.empty() || unit == "B")
    shift = 0;
  else if (unit == "K" || unit == "KiB")
    shift = 10;
  else if (unit == "M" || unit == "MiB")
    shift = 20;
  else if (unit == "G" || unit == "GiB")
    shift = 30;
  else
    return bad();
  if (v > (uint64_t{1} << (62 - shift))) return bad();
  return v << shift;
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
  static const std::set<std::string_view> known = {
      "interval", "count",    "outputs", "log_level", "drop_path", "attach",   "net_slots",
      "http",     "override", "spool",   "listen",    "tags",      "host_tag", "hostname"};
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
  if (auto st = read_key(root, "listen", where, c.listen); !st) return st.error();
  if (auto st = read_key(root, "host_tag", where, c.host_tag); !st) return st.error();
  if (auto st = read_key(root, "hostname", where, c.hostname); !st) return st.error();
  if (const toml::node* n = root.get("tags")) {
    const toml::table* tags = n->as_table();
    if (!tags) return Error::msg(fmt::format("{}: key \"tags\" must be a table", where));
    for (const auto& [k, v] : *tags) {
      auto s = v.value_exact<std::string>();
      if (!s) return Error::msg(fmt::format("{}: tag \"{}\" must be a string", where, k.str()));
      c.tags[std::string(k.str())] = *s;
    }
  }
  std::string attach = attach_mode_name(c.attach_mode);
  if (auto st = read_key(root, "attach", where, attach); !st) return st.error();
  auto mode = parse_attach_mode(attach);
  if (!mode) return mode.error().context(where);
  c.attach_mode = *mode;
  int64_t slots = c.net_slots;
  if (auto st = read_key(root, "net_slots", where, slots); !st) return st.error();
  if (auto st = check_net_slots(slots, "key \"net_slots\""); !st) return st.error().context(where);
  c.net_slots = static_cast<uint32_t>(slots);

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
      if (k.str() != "username" && k.str() != "password" && k.str() != "token" &&
          k.str() != "tls_ca_file")
        return Error::msg(fmt::format("{}: unknown key \"http.{}\"", where, k.str()));
    if (auto st = read_key(*http, "username", where, c.http_username); !st) return st.error();
    if (auto st = read_key(*http, "password", where, c.http_password); !st) return st.error();
    if (auto st = read_key(*http, "token", where, c.http_token); !st) return st.error();
    if (auto st = read_key(*http, "tls_ca_file", where, c.tls_ca_file); !st) return st.error();
  }
  if (const toml::node* n = root.get("spool")) {
    const toml::table* spool = n->as_table();
    if (!spool) return Error::msg(fmt::format("{}: \"spool\" must be a table", where));
    for (const auto& [k, _] : *spool)
      if (k.str() != "dir" && k.str() != "max_size")
        return Error::msg(fmt::format("{}: unknown key \"spool.{}\"", where, k.str()));
    if (auto st = read_key(*spool, "dir", where, c.spool_dir); !st) return st.error();
    if (const toml::node* m = spool->get("max_size")) {
      // "512MiB" or a plain number of bytes.
      if (auto bytes = m->value_exact<int64_t>()) {
        if (*bytes < 0)
          return Error::msg(fmt::format("{}: key \"spool.max_size\" must be >= 0", where));
        c.spool_max_bytes = static_cast<uint64_t>(*bytes);
      } else if (auto text = m->value_exact<std::string>()) {
        auto size = parse_size(*text);
        if (!size) return size.error().context(fmt::format("{}: key \"spool.max_size\"", where));
        c.spool_max_bytes = *size;
      } else {
        return Error::msg(fmt::format(
            "{}: key \"spool.max_size\" must be a size like \"512MiB\" or bytes", where));
      }
    }
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

// Everything the command line sets, as CLI11 fills it in; what was given is asked of
// the subcommand (count()), so that only given flags win over the file.
struct Flags {
  std::string log_level, config_file, attach;
  int64_t net_slots = 0;
  bool no_drop_path = false;
  // run
  double interval_s = 0;
  int64_t count = 0;
  std::vector<std::string> outputs;
  std::string spool_dir, spool_max_size, listen, tls_ca_file;
  std::vector<std::string> tags;  // K=V each
  bool no_host_tag = false;
  std::string hostname;
  // top
  bool batch = false, own = false;
  int64_t iterations = 0;
  double delay_s = 0;
  std::string sort = "cpu", filter;
  // cleanup
  bool all_namespaces = false;
};

struct Subcommands {
  CLI::App* run;
  CLI::App* list;
  CLI::App* top;
  CLI::App* check;
  CLI::App* cleanup;
};

void add_naming_flags(CLI::App& sub, Flags& f) {
  sub.add_flag("--no-drop-path", f.no_drop_path,
               "name albatross VMs by their full path a:b, not the last label");
  sub.add_option("--config", f.config_file, "TOML configuration file")->check(CLI::ExistingFile);
}

void add_net_slots_flag(CLI::App& sub, Flags& f) {
  sub.add_option("--net-slots", f.net_slots,
                 "VM taps and bridges the network counters hold, fixed at start (default 0: "
                 "twice the host's links, at least 1024-8192 by CPU count)");
}

CLI::App* add_run(CLI::App& app, Flags& f) {
  CLI::App* run = app.add_subcommand("run", "collect and emit metrics every interval");
  run->add_option("--interval", f.interval_s, "seconds between ticks (default 1)");
  run->add_option("--count", f.count, "stop after N ticks (default: run until signalled)");
  run->add_option("--output", f.outputs,
                  "-, tcp://HOST[:PORT], udp://HOST[:PORT], http(s)://HOST:PORT/write?db=NAME, "
                  "http(s)://HOST:PORT/api/v2/write?org=ORG&bucket=BUCKET (repeatable; "
                  "default -; the token comes from the config or VMSCOPE_INFLUX_TOKEN)");
  run->add_option("--tls-ca-file", f.tls_ca_file,
                  "CA bundle (PEM) that signs the https outputs' servers (default: the system's)");
  run->add_option("--listen", f.listen,
                  "serve Prometheus metrics on http://ADDR:PORT/metrics, e.g. 127.0.0.1:9847 "
                  "(default: no endpoint)");
  run->add_option("--attach", f.attach, "how to attach tc programs: auto, tcx or clsact");
  run->add_option("--tag", f.tags,
                  "K=V: a tag on every line and /metrics series (repeatable; over [tags])");
  run->add_flag("--no-host-tag", f.no_host_tag,
                "no host=HOSTNAME on http(s) outputs and /metrics (Telegraf adds its own)");
  run->add_option("--hostname", f.hostname, "the host tag's value (default: gethostname())");
  add_net_slots_flag(*run, f);
  run->add_option("--spool-dir", f.spool_dir,
                  "where outputs spool lines while their destination is down "
                  "(default /var/lib/vmscope/spool)");
  run->add_option("--spool-max-size", f.spool_max_size,
                  "bound of each output's spool, e.g. 512MiB (default); 0: no spool");
  add_naming_flags(*run, f);
  return run;
}

CLI::App* add_list(CLI::App& app, Flags& f) {
  CLI::App* list = app.add_subcommand("list", "list the VMs found on this host");
  add_naming_flags(*list, f);
  return list;
}

CLI::App* add_top(CLI::App& app, Flags& f) {
  CLI::App* top = app.add_subcommand("top", "live view of every VM (keys: h for help)");
  top->add_flag("-b,--batch", f.batch, "print plain-text snapshots instead of a screen");
  top->add_option("-n,--iterations", f.iterations, "snapshots before exiting (default: until q)");
  top->add_option("-d,--delay", f.delay_s, "seconds between updates (default 1)");
  top->add_option("--sort", f.sort, sort_key_list() + " (default cpu)");
  top->add_option("--filter", f.filter, "show only VMs whose name contains this");
  top->add_option("--attach", f.attach, "when attaching its own programs: auto, tcx or clsact");
  top->add_flag("--own", f.own, "attach own programs even when a vmscope run is active");
  add_net_slots_flag(*top, f);
  add_naming_flags(*top, f);
  return top;
}

CLI::App* add_check(CLI::App& app) {
  return app.add_subcommand(
      "check", "check what vmscope needs of this host, one line each; exit 0 when all is there");
}

CLI::App* add_cleanup(CLI::App& app, Flags& f) {
  CLI::App* cleanup = app.add_subcommand(
      "cleanup",
      "remove the filters, links and maps `vmscope run` keeps in the kernel between its runs "
      "(refused while it runs)");
  cleanup->add_flag("--all-namespaces", f.all_namespaces,
                    "also in every other network namespace that has some");
  return cleanup;
}

// The defaults, or the file given with --config over them.
Result<Config> base_config(const Flags& f) {
  if (f.config_file.empty()) return Config{};
  auto text = read_file(f.config_file);
  if (!text) return text.error();
  return apply_toml(*text, f.config_file, Config{});
}

Status apply_run_flags(const Flags& f, const CLI::App& run, Config& c) {
  if (run.count("--interval")) c.interval_s = f.interval_s;
  if (run.count("--count")) {
    if (f.count < 0) return Error::msg(fmt::format("--count {}: must be >= 0", f.count));
    c.count = static_cast<uint64_t>(f.count);
  }
  if (run.count("--output")) c.outputs = f.outputs;
  if (run.count("--spool-dir")) c.spool_dir = f.spool_dir;
  if (run.count("--listen")) c.listen = f.listen;
  if (run.count("--tls-ca-file")) c.tls_ca_file = f.tls_ca_file;
  if (const char* token = std::getenv(kTokenEnv); token && *token) c.http_token = token;
  for (const std::string& kv : f.tags) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos)
      return Error::msg(fmt::format("--tag \"{}\": expected KEY=VALUE", kv));
    c.tags[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (f.no_host_tag) c.host_tag = false;
  if (run.count("--hostname")) c.hostname = f.hostname;
  if (run.count("--spool-max-size")) {
    auto size = parse_size(f.spool_max_size);
    if (!size) return size.error().context("--spool-max-size");
    c.spool_max_bytes = *size;
  }
  return {};
}

// top's own settings; -d sets the config's interval.
Result<TopOptions> top_options(const Flags& f, const CLI::App& top, Config& c) {
  if (top.count("--delay")) c.interval_s = f.delay_s;
  if (f.iterations < 0)
    return Error::msg(fmt::format("--iterations {}: must be >= 0", f.iterations));
  TopOptions t;
  t.batch = f.batch;
  t.iterations = static_cast<uint64_t>(f.iterations);
  t.filter = f.filter;
  t.shared = !f.own;
  auto sort = parse_sort_key(f.sort);
  if (!sort)
    return Error::msg(fmt::format("--sort {}: expected one of {}", f.sort, sort_key_list()));
  t.sort = *sort;
  if (top.count("--delay") && !(f.delay_s >= 0.1 && f.delay_s <= 3600))
    return Error::msg(fmt::format("--delay {}: must be between 0.1 and 3600 seconds", f.delay_s));
  return t;
}

Status apply_common_flags(const Flags& f, bool quiet, bool net_slots_given, Config& c) {
  if (!f.log_level.empty())
    c.log_level = f.log_level;
  else if (quiet)
    c.log_level = "warn";  // top and check: their output is the screen or their lines
  if (f.no_drop_path) c.drop_path = false;
  if (!f.attach.empty()) {
    auto mode = parse_attach_mode(f.attach);
    if (!mode) return mode.error().context("--attach");
    c.attach_mode = *mode;
  }
  if (net_slots_given) {
    if (auto st = check_net_slots(f.net_slots, "--net-slots"); !st) return st;
    c.net_slots = static_cast<uint32_t>(f.net_slots);
  }
  return {};
}

// The command line from what was parsed: file, then flags over it, then the checks.
Result<CommandLine> resolve(const Flags& f, const Subcommands& sub) {
  CommandLine cli;
  cli.command = sub.list->parsed()      ? Command::kList
                : sub.top->parsed()     ? Command::kTop
                : sub.check->parsed()   ? Command::kCheck
                : sub.cleanup->parsed() ? Command::kCleanup
                                        : Command::kRun;
  cli.cleanup_all_namespaces = f.all_namespaces;
  auto c = base_config(f);
  if (!c) return c.error();
  if (auto st = apply_run_flags(f, *sub.run, *c); !st) return st.error();
  if (sub.top->parsed()) {
    auto top = top_options(f, *sub.top, *c);
    if (!top) return top.error();
    cli.top = *top;
  }
  bool net_slots_given = sub.run->count("--net-slots") + sub.top->count("--net-slots") > 0;
  if (auto st =
          apply_common_flags(f, sub.top->parsed() || sub.check->parsed(), net_slots_given, *c);
      !st)
    return st.error();
  if (auto st = validate(*c); !st) return st.error();
  if (c->outputs.empty()) c->outputs.push_back("-");
  c->config_file = f.config_file;
  cli.config = std::move(*c);
  return cli;
}

// Every command line error ends here: one line, exit code 2.
ParseOutcome usage_error(std::string_view what) {
  ParseOutcome out;
  out.exit_code = 2;
  out.message = fmt::format("vmscope: {}", what.substr(0, what.find('\n')));
  return out;
}

}  // namespace

ParseOutcome parse_command_line(const std::vector<std::string>& args) {
  CLI::App app{"vmscope: host-side monitor for virtual machines", "vmscope"};
  app.require_subcommand(0, 1);  // none only with --version (checked after parsing)
  app.fallthrough();  // `vmscope run --log-level debug` as well as `vmscope --log-level debug run`
  Flags flags;
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error, critical, off");
  bool version = false;
  app.add_flag("--version", version,
               "print the version, the git revision and the kernel the "
               "BPF types (vmlinux.h) came from");
  const Subcommands sub{add_run(app, flags), add_list(app, flags), add_top(app, flags),
                        add_check(app), add_cleanup(app, flags)};

  std::vector<std::string> rev(args.rbegin(), args.rend());
  if (!rev.empty()) rev.pop_back();  // program name
  try {
    app.parse(rev);
  } catch (const CLI::Success& e) {  // --help
    std::ostringstream help;
    app.exit(e, help, help);
    ParseOutcome out;
    out.message = help.str();
    return out;
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  if (version) {
    ParseOutcome out;
    out.cli = CommandLine{};
    out.cli->command = Command::kVersion;
    return out;
  }
  if (app.get_subcommands().empty()) return usage_error("A subcommand is required");
  auto cli = resolve(flags, sub);
  if (!cli) return usage_error(cli.error().message);
  ParseOutcome out;
  out.cli = std::move(*cli);
  return out;
}

namespace {

// "(added a; removed b)": what `to` has that `from` has not, and the reverse (as many
// times as repeated); "(reordered)" when neither.
std::string list_change(const std::vector<std::string>& from, const std::vector<std::string>& to) {
  std::multiset<std::string> left(from.begin(), from.end());
  std::vector<std::string> added, parts;
  for (const auto& u : to)
    if (auto it = left.find(u); it != left.end())
      left.erase(it);
    else
      added.push_back(u);
  if (!added.empty()) parts.push_back(fmt::format("added {}", fmt::join(added, " ")));
  if (!left.empty()) parts.push_back(fmt::format("removed {}", fmt::join(left, " ")));
  if (parts.empty()) parts.push_back("reordered");
  return fmt::format("({})", fmt::join(parts, "; "));
}

}  // namespace

Reload plan_reload(const Config& running, Config next) {
  Reload r;
  // Restart-only keys: the slot maps are sized and the programs attached once; the spool
  // of a running output is open where it is.
  const auto keep = [&](auto& now, const auto& was, std::string_view key, std::string shown) {
    if (now == was) return;
    r.restart.push_back(fmt::format("{} (running with {})", key, shown));
    now = was;
  };
  keep(next.attach_mode, running.attach_mode, "attach", attach_mode_name(running.attach_mode));
  keep(next.net_slots, running.net_slots, "net_slots", std::to_string(running.net_slots));
  keep(next.spool_dir, running.spool_dir, "spool.dir", running.spool_dir);
  keep(next.spool_max_bytes, running.spool_max_bytes, "spool.max_size",
       std::to_string(running.spool_max_bytes));

  // Every live key is taken over by `named` as it is compared: what differs from next
  // afterwards is a key added later and not named here, applied too and said so.
  Config named = running;
  const auto take = [&](auto Config::*key) {
    named.*key = next.*key;
    return running.*key != next.*key;
  };
  const auto shown = [&](auto Config::*key, std::string_view name) {
    if (take(key)) r.changed.push_back(fmt::format("{} {} -> {}", name, running.*key, next.*key));
  };
  shown(&Config::interval_s, "interval");
  shown(&Config::count, "count");
  shown(&Config::log_level, "log_level");
  shown(&Config::drop_path, "drop_path");
  shown(&Config::listen, "listen");
  if (take(&Config::outputs))
    r.changed.push_back("outputs " + list_change(running.outputs, next.outputs));
  if (take(&Config::overrides))
    r.changed.push_back(fmt::format("override ({} -> {} entries)", running.overrides.size(),
                                    next.overrides.size()));
  const bool user = take(&Config::http_username), password = take(&Config::http_password);
  if (user || password) r.changed.push_back("http credentials");  // never logged
  if (named != next) r.changed.push_back("other settings");
  r.config = std::move(next);
  return r;
}

Result<Reload> reload_config(const std::vector<std::string>& args, const Config& running) {
  ParseOutcome parsed = parse_command_line(args);
  if (!parsed.cli) {
    std::string_view m = parsed.message;
    if (m.rfind("vmscope: ", 0) == 0) m.remove_prefix(9);
    return Error::msg(std::string(m));
  }
  return plan_reload(running, std::move(parsed.cli->config));
}

}  // namespace vmscope
