// `vmscope list`: the VMs on this host right now, with their taps and a quick look at
// their CPU, memory and age. Reads /proc directly: no BPF, so it also works next to a
// running agent and without CAP_BPF.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "agent/agent.h"
#include "agent/options.h"
#include "common/units.h"
#include "discover/inventory.h"
#include "discover/links.h"
#include "discover/proc_stat.h"
#include "discover/vm_processes.h"

namespace vmscope {
namespace {

struct ProcTimes {
  uint64_t cpu_ticks = 0;    // utime + stime
  uint64_t start_ticks = 0;  // since boot
  uint64_t rss_pages = 0;
};

std::optional<ProcTimes> read_times(int pid) {
  std::vector<std::string> v = read_proc_stat("/proc", static_cast<uint32_t>(pid));
  if (v.size() < 25) return std::nullopt;
  ProcTimes t;
  t.cpu_ticks = std::stoull(v[14]) + std::stoull(v[15]);
  t.start_ticks = std::stoull(v[22]);
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  uint64_t size = 0;
  statm >> size >> t.rss_pages;
  return t;
}

double uptime_seconds() {
  std::ifstream in("/proc/uptime");
  double up = 0;
  in >> up;
  return up;
}

struct Row {
  std::string launcher = "-";
  std::set<int> pids;
  std::vector<std::string> taps;
  std::set<std::string> bridges;
};

}  // namespace

Status list_vms(const Config& config, std::FILE* out) {
  auto nl = Netlink::open(0);
  if (!nl) return nl.error();
  auto links = nl->dump_links();
  if (!links) return links.error();
  const EngineOptions opts = engine_options(config);
  Inventory inv(opts.inventory);
  inv.reset(*links);
  inv.resolve_owners();

  std::map<std::string, Row> vms;  // by VM name
  for (const VmProcess& p : scan_vm_processes(opts.processes)) {
    Row& r = vms[p.vm.name];
    r.launcher = p.vm.launcher;
    r.pids.insert(static_cast<int>(p.tgid));
  }
  for (const auto& [_, tap] : inv.taps()) {
    Row& r = vms[tap.vm.name];
    if (tap.named) r.launcher = tap.vm.launcher;
    if (tap.pid) r.pids.insert(tap.pid);
    r.taps.push_back(tap.link.name);
    if (!tap.bridge.empty()) r.bridges.insert(tap.bridge);
  }

  // CPU % over a short window, like top's first screen.
  constexpr auto kWindow = std::chrono::milliseconds(300);
  std::map<int, ProcTimes> before;
  for (const auto& [_, r] : vms)
    for (int pid : r.pids)
      if (auto t = read_times(pid)) before[pid] = *t;
  std::this_thread::sleep_for(kWindow);
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_mib = static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
  const double now = uptime_seconds();

  fmt::print(out, "{:<24} {:>8} {:<16} {:>6} {:>9} {:>8} {:<20} {}\n", "VM", "PID", "LAUNCHER",
             "CPU%", "RSS(MiB)", "UPTIME", "TAPS", "BRIDGE");
  for (const auto& [name, r] : vms) {
    double cpu = 0, rss = 0, oldest = 0;
    bool have = false;
    for (int pid : r.pids) {
      auto b = before.find(pid);
      auto a = read_times(pid);
      if (b == before.end() || !a) continue;
      have = true;
      cpu += static_cast<double>(a->cpu_ticks - b->second.cpu_ticks) / hz /
             std::chrono::duration<double>(kWindow).count() * 100;
      rss += static_cast<double>(a->rss_pages) * page_mib;
      oldest = std::max(oldest, now - static_cast<double>(a->start_ticks) / hz);
    }
    std::string pid = r.pids.empty() ? "-" : std::to_string(*r.pids.begin());
    fmt::print(out, "{:<24} {:>8} {:<16} {:>6} {:>9} {:>8} {:<20} {}\n", name, pid, r.launcher,
               have ? fmt::format("{:.1f}", cpu) : "-", have ? fmt::format("{:.1f}", rss) : "-",
               have ? human_duration(oldest) : "-",
               r.taps.empty() ? "-" : fmt::format("{}", fmt::join(r.taps, ",")),
               r.bridges.empty() ? "-" : fmt::format("{}", fmt::join(r.bridges, ",")));
  }
  return {};
}

}  // namespace vmscope
