// Fuzz target: the naming rules, fed what a VM's launcher (or a tenant naming its VM)
// controls: /proc/<pid>/cmdline, /proc/<pid>/cgroup and the tap's name. Input: one flag
// byte (bit 0: drop_path), then cmdline, cgroup and tap separated by 0xff bytes (which
// UTF-8 never holds).
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "discover/naming.h"
#include "fuzz_check.h"

namespace {

void check_identity(const std::optional<vmscope::VmIdentity>& id) {
  static const std::set<std::string> launchers = {"solo5-hvt",   "solo5-spt",        "qemu",
                                                  "firecracker", "cloud-hypervisor", "crosvm",
                                                  "libvirt",     "machined"};
  if (!id) return;
  FUZZ_CHECK(!id->name.empty());
  FUZZ_CHECK(launchers.count(id->launcher) == 1);
  for (const auto& [tap, net] : id->tap_nets) FUZZ_CHECK(!tap.empty() && !net.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool drop_path = (data[0] & 1) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<std::string_view> parts = vmscope::fuzz::split(text, '\xff');
  const std::string_view cmdline = parts[0];
  const std::string_view cgroup = parts.size() > 1 ? parts[1] : std::string_view();
  const std::string_view tap = parts.size() > 2 ? parts[2] : std::string_view();

  vmscope::ProcessInfo proc;
  proc.pid = 1;
  proc.argv = vmscope::split_argv(cmdline);
  proc.cgroup = std::string(cgroup);
  // split_argv loses nothing but a final NUL.
  std::string joined;
  for (size_t i = 0; i < proc.argv.size(); ++i) {
    if (i > 0) joined += '\0';
    joined += proc.argv[i];
  }
  FUZZ_CHECK(joined == cmdline || joined + '\0' == cmdline);

  const auto id = vmscope::name_vm(proc, vmscope::NamingOptions{drop_path});
  check_identity(id);
  const auto other = vmscope::name_vm(proc, vmscope::NamingOptions{!drop_path});
  check_identity(other);
  // drop_path shapes solo5 names only. One of them may be empty ("a:" keeps no last label),
  // and the cgroup rules then name the process.
  if (id && other && id->launcher != other->launcher)
    FUZZ_CHECK(id->launcher.starts_with("solo5") || other->launcher.starts_with("solo5"));

  FUZZ_CHECK(vmscope::systemd_unescape(cgroup).size() <= cgroup.size());

  // Overrides as an operator writes them, matched against hostile argv and taps.
  static const std::vector<vmscope::NameOverride> overrides = {
      {"vmmtap0", "", "by-tap", "br0"},
      {"", "qemu-system-x86_64 .*-name guest=web[0-9]+", "web", ""},
      {"", "^/usr/bin/firecracker --id (a|b)+$", "fc", "br1"}};
  if (auto o = vmscope::match_override(overrides, tap, &proc)) {
    FUZZ_CHECK(o->launcher == "override" && !o->name.empty());
    for (const auto& [t, net] : o->tap_nets) FUZZ_CHECK(t == tap && !net.empty());
  }
  return 0;
}
