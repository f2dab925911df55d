#include "discover/naming.h"

#include <array>
#include <cstddef>
#include <initializer_list>
#include <regex>
#include <unordered_map>
#include <utility>

namespace vmscope {
namespace {

constexpr std::size_t kMaxTapName = 15;  // IFNAMSIZ - 1

std::string_view basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// The directory holding `path`'s last component, as a single name ("" at the root).
std::string_view parent_name(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return {};
  return basename(path.substr(0, slash));
}

bool strip_suffix(std::string_view& s, std::string_view suffix) {
  if (!s.ends_with(suffix) || s.size() == suffix.size()) return false;
  s.remove_suffix(suffix.size());
  return true;
}

// Values given to any of `names` in args[begin, end), as "--opt value" or "--opt=value".
std::vector<std::string> option_values(const std::vector<std::string>& args, std::size_t begin,
                                       std::size_t end,
                                       std::initializer_list<std::string_view> names) {
  std::vector<std::string> values;
  for (std::size_t i = begin; i < end; ++i) {
    const std::string_view arg = args[i];
    for (const std::string_view name : names) {
      if (arg == name) {
        if (i + 1 < end) values.push_back(args[++i]);
        break;
      }
      if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=') {
        values.emplace_back(arg.substr(name.size() + 1));
        break;
      }
    }
  }
  return values;
}

std::optional<VmIdentity> identity(std::string name, std::string launcher) {
  if (name.empty()) return std::nullopt;
  VmIdentity id;
  id.name = std::move(name);
  id.launcher = std::move(launcher);
  return id;
}

// ---- solo5 (albatross) ----

// Last ':'-separated label: albatross' default `vm` tag (drop_path).
std::string_view last_label(std::string_view path) {
  const auto colon = path.rfind(':');
  return colon == std::string_view::npos ? path : path.substr(colon + 1);
}

// albatross writes /run/albatross/<full:name>.img; plain solo5 users run foo.hvt / foo.spt.
std::string image_stem(std::string_view image) {
  std::string_view stem = basename(image);
  for (const std::string_view ext : {".img", ".hvt", ".spt"}) {
    if (strip_suffix(stem, ext)) break;
  }
  return std::string(stem);
}

std::optional<VmIdentity> name_solo5(const ProcessInfo& proc, const NamingOptions& opts,
                                     std::string_view launcher) {
  const auto& argv = proc.argv;
  // Tender options end at "--"; solo5 also takes the unikernel as the first non-option.
  std::size_t tender_end = argv.size();
  std::size_t image_at = argv.size();
  for (std::size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "--") {
      tender_end = i;
      image_at = i + 1;
      break;
    }
    if (!argv[i].starts_with('-')) {
      tender_end = image_at = i;
      break;
    }
  }

  std::map<std::string, std::string> tap_nets;
  for (std::size_t i = 1; i < tender_end; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--net:")) {
      const std::string_view spec = arg.substr(6);  // NET=TAP
      const auto eq = spec.find('=');
      if (eq != std::string_view::npos && eq > 0 && eq + 1 < spec.size()) {
        tap_nets[std::string(spec.substr(eq + 1))] = std::string(spec.substr(0, eq));
      }
    } else if (arg.starts_with("--net=") && arg.size() > 6) {
      // Pre-0.6 solo5 had a single unnamed device; the unikernel sees it as "service".
      tap_nets[std::string(arg.substr(6))] = "service";
    }
  }

  const bool has_image = image_at < argv.size() && !argv[image_at].starts_with('-');
  const std::string stem = has_image ? image_stem(argv[image_at]) : std::string();
  std::string name_arg;
  // The unikernel's own --name; the last one wins, as in its argument parser.
  for (auto& value :
       option_values(argv, has_image ? image_at + 1 : image_at, argv.size(), {"--name"})) {
    if (!value.empty()) name_arg = std::move(value);
  }

  std::string name;
  if (opts.drop_path) {
    name = last_label(name_arg.empty() ? stem : name_arg);
  } else if (!stem.empty()) {
    // The image carries the full path; --name may already have been shortened.
    name = stem.find(':') == std::string::npos ? ":" + stem : stem;
  } else {
    name = name_arg;
  }
  auto id = identity(std::move(name), std::string(launcher));
  if (id) id->tap_nets = std::move(tap_nets);
  return id;
}

// ---- qemu ----

// The guest name from a -name value: "guest=X,debug-threads=on", "X,process=Y" or "X".
// qemu escapes a literal ',' in a value as ",,".
std::string qemu_guest_name(std::string_view value) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != ',') {
      parts.back() += value[i];
    } else if (i + 1 < value.size() && value[i + 1] == ',') {
      parts.back() += ',';
      ++i;
    } else {
      parts.emplace_back();
    }
  }
  std::string guest;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    // Only the first element can be the implied "guest" key.
    if (i == 0 && parts[i].find('=') == std::string::npos) {
      guest = parts[i];
    } else if (parts[i].starts_with("guest=")) {
      guest = parts[i].substr(6);
    }
  }
  return guest;
}

std::optional<VmIdentity> name_qemu(const ProcessInfo& proc) {
  const auto values = option_values(proc.argv, 1, proc.argv.size(), {"-name", "--name"});
  // Like qemu's option parsing, the last -name wins.
  if (values.empty()) return std::nullopt;
  return identity(qemu_guest_name(values.back()), "qemu");
}

// ---- firecracker ----

std::optional<VmIdentity> name_firecracker(const ProcessInfo& proc) {
  const auto values = option_values(proc.argv, 1, proc.argv.size(), {"--id"});
  // Without --id firecracker calls itself "anonymous-instance": no useful name.
  if (values.empty()) return std::nullopt;
  return identity(values.front(), "firecracker");
}

// ---- control-socket based names (cloud-hypervisor, crosvm) ----

// The VM name a control-socket path carries. Most setups name the socket after the VM
// (libvirt's old ch driver: /run/libvirt/ch/<name>-socket, /run/ch/<name>.sock). When the
// socket has the VMM's default name, the per-VM directory names it instead (kata:
// /run/vc/vm/<sandbox>/clh-api.sock, ChromeOS: /run/vm/<name>/crosvm.sock) unless that
// directory is shared by everything (/tmp, /run).
std::string socket_name(std::string_view path) {
  static constexpr std::array<std::string_view, 7> kDefaultStems = {
      "cloud-hypervisor", "clh-api", "ch", "api", "crosvm", "crosvm_control", "control"};
  static constexpr std::array<std::string_view, 6> kSharedDirs = {"",    "tmp",     "run",
                                                                  "var", "sockets", "socket"};
  std::string_view stem = basename(path);
  for (const std::string_view suffix : {".sock", ".socket", "-socket", "-sock"}) {
    if (strip_suffix(stem, suffix)) break;
  }
  for (const std::string_view generic : kDefaultStems) {
    if (stem != generic) continue;
    const std::string_view dir = parent_name(path);
    for (const std::string_view shared : kSharedDirs) {
      if (dir == shared) return {};
    }
    return std::string(dir);
  }
  return std::string(stem);
}

// cloud-hypervisor has no VM-name option. The only per-VM identifier on its command line
// is the REST API socket, `--api-socket path=/run/ch/web1.sock` (or the legacy bare path
// `--api-socket /tmp/x.sock`), which ch-remote and every orchestrator must know to drive
// the VM, so it is what operators name after the VM. `--api-socket fd=N` (current libvirt)
// names nothing; libvirt's cgroup scope (machine-ch\x2dN\x2dNAME.scope) covers that case.
std::optional<VmIdentity> name_cloud_hypervisor(const ProcessInfo& proc) {
  const auto values = option_values(proc.argv, 1, proc.argv.size(), {"--api-socket"});
  if (values.empty()) return std::nullopt;
  std::string_view spec = values.front();
  std::string_view path;
  if (spec.find('=') == std::string_view::npos) {
    path = spec;
  } else {
    while (!spec.empty()) {  // comma-separated key=value list
      const auto comma = spec.find(',');
      const std::string_view item = spec.substr(0, comma);
      if (item.starts_with("path=")) path = item.substr(5);
      spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    }
  }
  if (path.empty()) return std::nullopt;
  return identity(socket_name(path), "cloud-hypervisor");
}

// crosvm `run` has had `--name NAME` since late 2024 ("useful when there are multiple
// crosvm processes running"), which is exactly the VM's name, so it wins. Older crosvm
// has no name, only the control socket `-s/--socket PATH` that `crosvm stop/balloon/...`
// talk to, which launchers place per VM; it is named like cloud-hypervisor's socket.
// Note crosvm forks its sandboxed device processes without exec, so they share this argv.
std::optional<VmIdentity> name_crosvm(const ProcessInfo& proc) {
  const auto& argv = proc.argv;
  for (const auto& name : option_values(argv, 1, argv.size(), {"--name"})) {
    if (!name.empty()) return identity(name, "crosvm");
  }
  const auto sockets = option_values(argv, 1, argv.size(), {"--socket", "-s"});
  if (sockets.empty()) return std::nullopt;
  return identity(socket_name(sockets.front()), "crosvm");
}

// ---- cgroup rules ----

// libvirt's machine name is "<driver>-<domain id>-<name>" (qemu, ch, lxc).
std::optional<std::string> libvirt_domain(std::string_view machine) {
  for (const std::string_view driver : {"qemu-", "ch-", "lxc-"}) {
    if (!machine.starts_with(driver)) continue;
    std::string_view rest = machine.substr(driver.size());
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 0 || digits + 1 >= rest.size() || rest[digits] != '-') return std::nullopt;
    return std::string(rest.substr(digits + 1));
  }
  return std::nullopt;
}

// One cgroup path component: a systemd machine scope or an old (non-systemd) libvirt group.
std::optional<VmIdentity> name_cgroup_component(std::string_view component) {
  std::string_view legacy = component;
  if (strip_suffix(legacy, ".libvirt-qemu") || strip_suffix(legacy, ".libvirt-lxc")) {
    return identity(std::string(legacy), "libvirt");
  }
  if (!component.starts_with("machine-") || !component.ends_with(".scope")) return std::nullopt;
  const std::string unit = systemd_unescape(component);
  std::string_view machine = unit;
  machine.remove_prefix(8);  // "machine-"
  machine.remove_suffix(6);  // ".scope"
  if (auto domain = libvirt_domain(machine)) return identity(std::move(*domain), "libvirt");
  return identity(std::string(machine), "machined");
}

std::optional<VmIdentity> name_cgroup_line(std::string_view line) {
  // hierarchy-ID:controllers:path
  const auto first = line.find(':');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = line.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  std::string_view path = line.substr(second + 1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    if (auto id = name_cgroup_component(path.substr(0, slash))) return id;
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return std::nullopt;
}

std::optional<VmIdentity> name_from_cgroup(std::string_view cgroup) {
  std::vector<std::string_view> lines;
  while (!cgroup.empty()) {
    const auto nl = cgroup.find('\n');
    lines.push_back(cgroup.substr(0, nl));
    cgroup = nl == std::string_view::npos ? std::string_view() : cgroup.substr(nl + 1);
  }
  // The unified (v2) line is authoritative on hybrid hosts; v1 lines are the fallback.
  for (const auto line : lines) {
    if (line.starts_with("0::")) {
      if (auto id = name_cgroup_line(line)) return id;
    }
  }
  for (const auto line : lines) {
    if (auto id = name_cgroup_line(line)) return id;
  }
  return std::nullopt;
}

std::optional<VmIdentity> name_from_argv(const ProcessInfo& proc, const NamingOptions& opts) {
  if (proc.argv.empty()) return std::nullopt;  // kernel threads, zombies
  const std::string_view exe = basename(proc.argv[0]);
  if (exe.starts_with("solo5-hvt")) return name_solo5(proc, opts, "solo5-hvt");
  if (exe.starts_with("solo5-spt")) return name_solo5(proc, opts, "solo5-spt");
  if (exe.starts_with("qemu-system") || exe == "qemu-kvm" || exe == "kvm") return name_qemu(proc);
  if (exe.starts_with("firecracker")) return name_firecracker(proc);
  if (exe.starts_with("cloud-hypervisor")) return name_cloud_hypervisor(proc);
  if (exe.starts_with("crosvm")) return name_crosvm(proc);
  return std::nullopt;
}

// libstdc++'s regex compiler reads the number of a repeat count ("{n,m}") or of a back
// reference ("\12") into a long without an overflow check (undefined behaviour; found by
// tests/fuzz, config_toml), and copies the pattern once per repetition: the numbers are
// bounded before a pattern reaches it.
constexpr long kMaxRegexNumber = 1000;

bool regex_numbers_fit(std::string_view pattern) {
  const auto digits_fit = [&](std::size_t& i) {
    long n = 0;
    for (; i < pattern.size() && pattern[i] >= '0' && pattern[i] <= '9'; ++i) {
      n = n * 10 + (pattern[i] - '0');
      if (n > kMaxRegexNumber) return false;
    }
    return true;
  };
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '\\') {
      ++i;
      if (i < pattern.size() && pattern[i] >= '0' && pattern[i] <= '9') {
        if (!digits_fit(i)) return false;
      } else {
        ++i;  // an escaped character ("\\12" is a backslash, then digits)
      }
    } else if (pattern[i] == '{') {
      ++i;
      if (!digits_fit(i)) return false;
      if (i < pattern.size() && pattern[i] == ',' && !digits_fit(++i)) return false;
    } else {
      ++i;
    }
  }
  return true;
}

// Compiling std::regex is slow and overrides are checked for every process on every scan.
// nullptr when the pattern does not compile (validate_override reports that at load time).
const std::regex* cached_regex(const std::string& pattern) {
  thread_local std::unordered_map<std::string, std::optional<std::regex>> cache;
  auto [it, inserted] = cache.try_emplace(pattern);
  if (inserted && regex_numbers_fit(pattern)) {
    try {
      it->second.emplace(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error&) {
    }
  }
  return it->second ? &*it->second : nullptr;
}

bool regex_matches(const std::string& pattern, const std::string& text) {
  const std::regex* re = cached_regex(pattern);
  if (re == nullptr) return false;
  try {
    return std::regex_search(text, *re);
  } catch (const std::regex_error&) {  // complexity/stack limits on pathological input
    return false;
  }
}

// std::regex (libstdc++) recurses once per character that a pattern like ".*" consumes:
// searched in a long command line it overflows the stack (50,000 characters did with
// 8 MiB; found by tests/fuzz, naming). Overrides search the command line's head, where
// launchers write what names a VM.
constexpr std::size_t kMaxOverrideText = 4096;

std::string join_argv(const std::vector<std::string>& argv) {
  std::string joined;
  for (const auto& arg : argv) {
    if (!joined.empty()) joined += ' ';
    joined += arg;
    if (joined.size() >= kMaxOverrideText) break;
  }
  if (joined.size() > kMaxOverrideText) joined.resize(kMaxOverrideText);
  return joined;
}

}  // namespace

std::optional<VmIdentity> name_vm(const ProcessInfo& proc, const NamingOptions& opts) {
  if (auto id = name_from_argv(proc, opts)) return id;
  return name_from_cgroup(proc.cgroup);
}

std::optional<VmIdentity> match_override(const std::vector<NameOverride>& overrides,
                                         std::string_view tap, const ProcessInfo* proc) {
  std::optional<std::string> joined;  // built only if a regex entry needs it
  for (const auto& entry : overrides) {
    if (entry.name.empty()) continue;
    bool matched = !tap.empty() && entry.tap == tap;
    if (!matched && proc != nullptr && !entry.process_regex.empty()) {
      if (!joined) joined = join_argv(proc->argv);
      matched = regex_matches(entry.process_regex, *joined);
    }
    if (!matched) continue;
    VmIdentity id;
    id.name = entry.name;
    id.launcher = "override";
    if (!entry.bridge.empty() && !tap.empty()) id.tap_nets[std::string(tap)] = entry.bridge;
    return id;
  }
  return std::nullopt;
}

std::vector<std::string> split_argv(std::string_view text) {
  std::vector<std::string> argv;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\0', pos);
    if (end == std::string_view::npos) end = text.size();
    argv.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return argv;
}

std::string systemd_unescape(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
      const int hi = hex(s[i + 2]);
      const int lo = hex(s[i + 3]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 3;
        continue;
      }
    }
    out += s[i];  // not a valid escape: keep it literally
  }
  return out;
}

std::string validate_override(const NameOverride& entry) {
  if (entry.name.empty()) return "override has no name";
  if (entry.tap.empty() && entry.process_regex.empty()) {
    return "override '" + entry.name + "' needs a tap or a process regex";
  }
  if (entry.tap.size() > kMaxTapName) {
    return "override '" + entry.name + "': tap name '" + entry.tap + "' is longer than " +
           std::to_string(kMaxTapName) + " characters";
  }
  if (!entry.process_regex.empty()) {
    if (!regex_numbers_fit(entry.process_regex)) {
      return "override '" + entry.name + "': process regex '" + entry.process_regex +
             "' has a repeat count or back reference above " + std::to_string(kMaxRegexNumber);
    }
    try {
      std::regex re(entry.process_regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return "override '" + entry.name + "': bad process regex '" + entry.process_regex +
             "': " + e.what();
    }
  }
  return {};
}

}  // namespace vmscope
