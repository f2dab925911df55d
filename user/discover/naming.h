// Naming a VM from its host process: which launcher started it and what the `vm` tag is.
// The rules follow what the launchers themselves write on the command line (albatross'
// solo5 tenders, qemu, firecracker, cloud-hypervisor, crosvm) or into the cgroup path
// (libvirt, systemd-machined), so the names match what albatross and the unikernels report.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmscope {

struct ProcessInfo {
  int pid = 0;
  std::vector<std::string> argv;  // /proc/<pid>/cmdline split on NUL (split_argv)
  std::string cgroup;             // full text of /proc/<pid>/cgroup
};

// argv from NUL-separated text (/proc/<pid>/cmdline, the args of an exec event): one
// element per NUL-terminated string; the last one needs no NUL (a truncated copy).
std::vector<std::string> split_argv(std::string_view nul_separated);

struct NamingOptions {
  // albatross default: last label of the name; false = full path "a:b" (albatross
  // --no-drop-path).
  bool drop_path = true;
};

// From the operator's config: tap name or process regex -> name. The regex searches the
// first 4096 bytes of the joined argv (std::regex overflows the stack on long text).
struct NameOverride {
  std::string tap;            // exact tap name, or empty
  std::string process_regex;  // ECMAScript regex searched in argv joined with ' ', or empty
  std::string name;           // VM name to use (required)
  std::string bridge;         // optional bridge tag

  bool operator==(const NameOverride&) const = default;
};

struct VmIdentity {
  std::string name;  // value of the `vm` tag
  // "solo5-hvt", "solo5-spt", "qemu", "firecracker", "cloud-hypervisor", "crosvm", "libvirt",
  // "machined", "override"
  std::string launcher;
  // solo5 only: tap -> NET from --net:NET=tap (NET is albatross' `bridge` tag).
  std::map<std::string, std::string> tap_nets;
};

// The naming rule for a process, by launcher; std::nullopt when no rule names it.
// argv rules (chosen by argv[0]'s basename) come first, then cgroup rules.
std::optional<VmIdentity> name_vm(const ProcessInfo& proc, const NamingOptions& opts);

// Operator overrides, checked before name_vm. proc may be null (tap without owner).
std::optional<VmIdentity> match_override(const std::vector<NameOverride>& overrides,
                                         std::string_view tap, const ProcessInfo* proc);

// systemd unit-name unescaping: "machine-qemu\\x2d1\\x2dweb1.scope" -> "machine-qemu-1-web1.scope"
std::string systemd_unescape(std::string_view s);

// Validate an override at config time (name present, a tap or a regex given, the regex
// compiles, the tap name fits IFNAMSIZ): returns error text or empty.
std::string validate_override(const NameOverride& entry);

}  // namespace vmscope
