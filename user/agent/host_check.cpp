#include "agent/host_check.h"

#include <bpf/btf.h>
#include <fmt/format.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <cstring>
#include <fstream>
#include <memory>

#include "attach/net_programs.h"
#include "attach/proc_programs.h"
#include "drain/net_drain.h"

namespace vmscope {
namespace {

constexpr int64_t kBpfFsMagic = 0xcafe4a11;
constexpr int64_t kTraceFsMagic = 0x74726163;
constexpr int64_t kCgroup2Magic = 0x63677270;

// "6.1.0-28-amd64" -> 6 * 1000 + 1; 0 when unreadable.
int version_of(std::string_view release) {
  unsigned major = 0, minor = 0;
  if (std::sscanf(std::string(release).c_str(), "%u.%u", &major, &minor) != 2) return 0;
  return static_cast<int>(major * 1000 + minor);
}

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "";
}

bool fs_is(const char* path, int64_t magic) {
  struct statfs fs {};
  return statfs(path, &fs) == 0 && static_cast<int64_t>(fs.f_type) == magic;
}

// CapEff from /proc/self/status; 0 when unreadable.
uint64_t effective_capabilities() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

CheckLine line(bool ok, bool required, std::string what, std::string detail) {
  return {ok, required, std::move(what), std::move(detail)};
}

CheckLine check_btf() {
  std::unique_ptr<btf, decltype(&btf__free)> b(btf__load_vmlinux_btf(), btf__free);
  if (b) return line(true, true, "kernel BTF", "/sys/kernel/btf/vmlinux (CO-RE)");
  return line(false, true, "kernel BTF",
              fmt::format("none ({}): vmscope needs a kernel built with CONFIG_DEBUG_INFO_BTF, as "
                          "Debian's",
                          std::strerror(errno)));
}

CheckLine check_bpffs() {
  if (fs_is("/sys/fs/bpf", kBpfFsMagic)) return line(true, false, "bpffs", "/sys/fs/bpf");
  return line(false, false, "bpffs",
              "not mounted: `vmscope top` cannot read a running agent's maps (mount -t bpf bpf "
              "/sys/fs/bpf)");
}

CheckLine check_tracefs() {
  if (fs_is("/sys/kernel/tracing", kTraceFsMagic))
    return line(true, false, "tracefs", "/sys/kernel/tracing");
  return line(true, false, "tracefs",
              "not mounted, not needed: vmscope uses BTF-typed tracepoints (tp_btf)");
}

CheckLine check_tc(int version) {
  if (version >= 6006) return line(true, true, "tc attachment", "tcx links (kernel 6.6+)");
  return line(true, true, "tc attachment", "clsact filters (tcx needs kernel 6.6)");
}

// The driver, not the device node: the unit's PrivateDevices= gives the agent a /dev
// without net/tun, while VMs elsewhere hold taps. sysfs lists the registered misc device.
CheckLine check_tun() {
  std::ifstream dev("/sys/class/misc/tun/dev");
  std::string numbers;
  if (std::getline(dev, numbers) && numbers == "10:200")
    return line(true, false, "/dev/net/tun", "tun/tap driver present");
  return line(false, false, "/dev/net/tun",
              "missing: no VM tap can exist (modprobe tun); processes are still monitored");
}

CheckLine check_cgroup2() {
  if (fs_is("/sys/fs/cgroup", kCgroup2Magic))
    return line(true, false, "cgroup v2", "/sys/fs/cgroup");
  return line(false, false, "cgroup v2",
              "not mounted at /sys/fs/cgroup: VMs are named from their command line only");
}

}  // namespace

CheckLine check_kernel_release(std::string_view release) {
  const int v = version_of(release);
  const std::string what = fmt::format("kernel {}", release.empty() ? "?" : release);
  // The BPF ring buffer and CAP_BPF: the oldest kernel the programs can load on.
  if (v >= 5008) return line(true, true, what, "5.8 or newer");
  return line(false, true, what, "vmscope needs kernel 5.8 or newer (BPF ring buffer)");
}

std::vector<CheckLine> check_capabilities(uint64_t effective) {
  auto has = [&](int cap) { return (effective >> cap) & 1; };
  constexpr int kDacReadSearch = 2, kNetAdmin = 12, kSysPtrace = 19, kSysAdmin = 21, kPerfmon = 38,
                kBpf = 39;
  // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, as on kernels before 5.8.
  const bool admin = has(kSysAdmin);
  auto cap = [&](int n, const char* name, bool required, const char* why,
                 const std::string& without) {
    const bool ok = has(n) || (admin && (n == kBpf || n == kPerfmon));
    return line(ok, required, name, ok ? why : fmt::format("missing: {}", without));
  };
  // What each one is for was found by dropping it (tests/root/least_privilege_test.cpp,
  // README "Least privilege"): the first three are needed to load the network programs
  // at all, the last two to tie another user's VM to its tap.
  constexpr const char* kHint = " (run as root, or with the capabilities of vmscope.service)";
  return {
      cap(kBpf, "CAP_BPF", true, "BPF maps and programs",
          fmt::format("no BPF map or program can be created{}", kHint)),
      cap(kPerfmon, "CAP_PERFMON", true,
          "network programs verified as trusted, tracing programs (exec/fork/exit, task walk)",
          fmt::format("neither the network nor the process programs load{}", kHint)),
      cap(kNetAdmin, "CAP_NET_ADMIN", true, "tc programs and their attachments, link events",
          fmt::format("the network programs do not load, no tap can be attached{}", kHint)),
      cap(kSysPtrace, "CAP_SYS_PTRACE", false,
          "other users' /proc/<pid>/fd/<n> and fdinfo (which tap a VM holds)",
          "taps of other users' VMs are not tied to their VM"),
      cap(kDacReadSearch, "CAP_DAC_READ_SEARCH", false,
          "list other users' /proc/<pid>/fd; reach /sys/fs/bpf (mode 0700) without root",
          "taps of other users' VMs are not tied to their VM; without root, nothing is kept "
          "in /sys/fs/bpf for the next run"),
  };
}

std::vector<CheckLine> check_prerequisites() {
  const std::string release = kernel_release();
  std::vector<CheckLine> out = {check_kernel_release(release), check_btf(), check_bpffs(),
                                check_tracefs(), check_tc(version_of(release))};
  for (CheckLine& c : check_capabilities(effective_capabilities())) out.push_back(std::move(c));
  out.push_back(check_tun());
  out.push_back(check_cgroup2());
  return out;
}

std::vector<CheckLine> check_host() {
  std::vector<CheckLine> out = check_prerequisites();
  auto net = NetPrograms::load();
  if (!net) {
    out.push_back(line(false, true, "network programs", net.error().message));
  } else {
    out.push_back(line(true, true, "network programs", "net.bpf.o loads"));
    NetDrain drain(NetMapFds{net->net_stats_fd(), net->service_stats_fd(), -1});
    if (auto st = drain.read(0); !st)
      out.push_back(line(false, true, "in-kernel summing", st.error().message));
    else if (drain.sums_in_kernel())
      out.push_back(line(true, false, "in-kernel summing", "net_sum.bpf.o (kernel 5.19+)"));
    else
      out.push_back(line(true, false, "in-kernel summing",
                         "batch lookup fallback (net_sum.bpf.o needs kernel 5.19)"));
  }
  auto procs = ProcPrograms::load([](const vs_proc_event&) {});
  if (!procs) {
    out.push_back(line(false, true, "process programs", procs.error().message));
  } else {
    out.push_back(line(true, true, "process programs", "proc.bpf.o loads and attaches"));
    out.push_back((*procs)->walks_task_list()
                      ? line(true, false, "task sampling", "task-list walk (kernel 6.7+)")
                      : line(true, false, "task sampling",
                             "task iterator fallback (the task-list walk needs kernel 6.7)"));
  }
  return out;
}

std::string format_check_line(const CheckLine& l) {
  return fmt::format("{} {}: {}", l.ok ? "✓" : "✗", l.what, l.detail);
}

const CheckLine* first_failure(const std::vector<CheckLine>& lines) {
  for (const CheckLine& l : lines)
    if (!l.ok && l.required) return &l;
  return nullptr;
}

}  // namespace vmscope
