#include "agent/agent.h"

#include <linux/rtnetlink.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <cmath>
#include <ctime>
#include <set>

#include "attach/net_attacher.h"
#include "attach/net_programs.h"
#include "common/unique_fd.h"
#include "discover/inventory.h"
#include "discover/links.h"
#include "drain/net_snapshot.h"
#include "output/net_lines.h"

namespace vmscope {
namespace {

// Owners are re-resolved on link events; this slow sweep only catches what events miss
// (a process that re-execs while holding its tap).
constexpr int64_t kOwnerSweepSeconds = 60;

int64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// One tap fd pair per device and direction: a host with 1000 VMs needs more than the
// default soft limit of 1024 descriptors.
void raise_fd_limit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

InventoryOptions inventory_options(const Config& c) {
  InventoryOptions o;
  o.naming.drop_path = c.drop_path;
  o.overrides = c.overrides;
  return o;
}

Result<UniqueFd> make_timer(double interval_s) {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!fd.valid()) return Error::from_errno("create tick timer", errno);
  itimerspec its{};
  auto ns = static_cast<int64_t>(std::llround(interval_s * 1e9));
  its.it_interval.tv_sec = ns / 1'000'000'000;
  its.it_interval.tv_nsec = ns % 1'000'000'000;
  its.it_value = its.it_interval;
  if (timerfd_settime(fd.get(), 0, &its, nullptr) < 0)
    return Error::from_errno("start tick timer", errno);
  return fd;
}

Result<UniqueFd> make_signalfd() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) < 0)
    return Error::from_errno("block SIGINT/SIGTERM", errno);
  UniqueFd fd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) return Error::from_errno("create signalfd", errno);
  return fd;
}

class Agent {
 public:
  Agent(const Config& c, std::vector<std::unique_ptr<Sink>> sinks, NetPrograms programs,
        Netlink events, Netlink requests)
      : config_(c),
        sinks_(std::move(sinks)),
        programs_(std::move(programs)),
        attacher_(programs_, c.attach_mode),
        collector_(programs_.net_stats_fd()),
        inventory_(inventory_options(c)),
        events_(std::move(events)),
        nl_(std::move(requests)) {}

  Status run() {
    if (auto st = resync(); !st) return st;
    auto timer = make_timer(config_.interval_s);
    if (!timer) return timer.error();
    auto sigfd = make_signalfd();
    if (!sigfd) return sigfd.error();
    spdlog::info("vmscope running: interval {}s, {} output(s), {} tap(s) found", config_.interval_s,
                 sinks_.size(), inventory_.taps().size());

    pollfd fds[3] = {
        {timer->get(), POLLIN, 0}, {events_.fd(), POLLIN, 0}, {sigfd->get(), POLLIN, 0}};
    uint64_t ticks = 0;
    Status result;
    while (config_.count == 0 || ticks < config_.count) {
      if (poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        result = Error::from_errno("poll", errno);
        break;
      }
      if (fds[2].revents) {
        signalfd_siginfo si;
        if (read(sigfd->get(), &si, sizeof(si)) == sizeof(si))
          spdlog::info("signal {}: stopping", strsignal(static_cast<int>(si.ssi_signo)));
        break;
      }
      if (fds[1].revents) on_link_events();
      if (fds[0].revents) {
        uint64_t expirations = 0;
        if (read(timer->get(), &expirations, sizeof(expirations)) != sizeof(expirations)) continue;
        tick();
        ++ticks;
      }
    }
    for (auto& s : sinks_) s->flush();
    attacher_.detach_all();
    return result;
  }

 private:
  // Full state from a link dump: at start-up and after an event overrun.
  Status resync() {
    auto links = nl_.dump_links();
    if (!links) return links.error();
    inventory_.reset(*links);
    inventory_.resolve_owners();
    sync_attachments();
    return {};
  }

  void on_link_events() {
    bool changed = false;
    auto st = events_.read_events([&](const LinkEvent& ev) {
      spdlog::debug("link event: {} {} (ifindex {}, carrier {}, master {})",
                    ev.removed ? "removed" : "changed", ev.link.name, ev.link.ifindex,
                    ev.link.carrier, ev.link.master);
      inventory_.apply(ev);
      changed = true;
    });
    if (!st) {
      spdlog::warn("{}; resynchronising from a full link dump", st.error().message);
      if (auto r = resync(); !r) spdlog::error("{}", r.error().message);
      return;
    }
    if (changed) sync_attachments();  // a new tap is counted from now, not from the next tick
  }

  void sync_attachments() {
    std::map<int, std::string> wanted;
    for (const auto& [ifindex, tap] : inventory_.taps()) wanted[ifindex] = tap.link.name;
    for (const auto& [ifindex, br] : inventory_.vm_bridges()) wanted[ifindex] = br.name;
    std::set<int> before;
    for (const auto& [ifindex, _] : attacher_.devices()) before.insert(ifindex);
    for (const Error& e : attacher_.sync(wanted)) {
      if (failed_.insert(e.message).second) spdlog::error("{}", e.message);
    }
    for (const auto& [ifindex, dev] : attacher_.devices()) {
      if (!before.erase(ifindex)) {
        collector_.on_attached(ifindex, nl_);
        spdlog::info("monitoring {} (ifindex {})", dev.ifname, ifindex);
      }
    }
    for (int gone : before) collector_.on_detached(gone);
  }

  void tick() {
    int64_t now = realtime_ns();
    if (now - last_sweep_ns_ > kOwnerSweepSeconds * 1'000'000'000) {
      inventory_.mark_all_dirty();
      last_sweep_ns_ = now;
    }
    inventory_.resolve_owners();
    auto snap = collector_.collect(inventory_, attacher_, nl_, programs_.slot_limit(), now);
    if (!snap) {
      // Keep running: the next tick reads the same cumulative counters, nothing is lost.
      if (!collect_failing_) spdlog::error("{}", snap.error().message);
      collect_failing_ = true;
      return;
    }
    collect_failing_ = false;
    batch_.clear();
    encode_net(*snap, batch_);
    for (auto& s : sinks_) s->write(batch_);
  }

  const Config& config_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  NetPrograms programs_;
  NetAttacher attacher_;
  NetCollector collector_;
  Inventory inventory_;
  Netlink events_;
  Netlink nl_;
  std::string batch_;
  std::set<std::string> failed_;  // attach errors already logged
  bool collect_failing_ = false;
  int64_t last_sweep_ns_ = realtime_ns();
};

}  // namespace

Status run_agent(const Config& config, std::vector<std::unique_ptr<Sink>> sinks) {
  raise_fd_limit();
  auto programs = NetPrograms::load();
  if (!programs) return programs.error();
  // Subscribe before the first dump so that no change falls between the two.
  auto events = Netlink::open(RTMGRP_LINK);
  if (!events) return events.error();
  auto requests = Netlink::open(0);
  if (!requests) return requests.error();
  Agent agent(config, std::move(sinks), std::move(*programs), std::move(*events),
              std::move(*requests));
  return agent.run();
}

Status list_vms(const Config& config, std::FILE* out) {
  auto nl = Netlink::open(0);
  if (!nl) return nl.error();
  auto links = nl->dump_links();
  if (!links) return links.error();
  Inventory inv(inventory_options(config));
  inv.reset(*links);
  inv.resolve_owners();
  struct Row {
    std::string launcher;
    int pid = 0;
    std::vector<std::string> taps;
    std::set<std::string> bridges;
  };
  std::map<std::pair<std::string, int>, Row> vms;  // by (name, pid)
  for (const auto& [_, tap] : inv.taps()) {
    Row& r = vms[{tap.vm.name, tap.pid}];
    r.launcher = tap.named ? tap.vm.launcher : "-";
    r.pid = tap.pid;
    r.taps.push_back(tap.link.name);
    if (!tap.bridge.empty()) r.bridges.insert(tap.bridge);
  }
  fmt::print(out, "{:<24} {:>8} {:<16} {:<24} {}\n", "VM", "PID", "LAUNCHER", "TAPS", "BRIDGE");
  for (const auto& [key, r] : vms) {
    fmt::print(out, "{:<24} {:>8} {:<16} {:<24} {}\n", key.first,
               r.pid ? std::to_string(r.pid) : "-", r.launcher, fmt::join(r.taps, ","),
               r.bridges.empty() ? std::string("-") : fmt::format("{}", fmt::join(r.bridges, ",")));
  }
  return {};
}

}  // namespace vmscope
