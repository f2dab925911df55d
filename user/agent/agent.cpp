#include "agent/agent.h"

#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <cmath>
#include <ctime>
#include <set>

#include "agent/options.h"
#include "agent/proc_tracker.h"
#include "attach/net_attacher.h"
#include "attach/net_programs.h"
#include "common/unique_fd.h"
#include "discover/inventory.h"
#include "discover/links.h"
#include "drain/net_snapshot.h"
#include "output/net_lines.h"
#include "output/output_writer.h"
#include "output/proc_lines.h"
#include "output/self_lines.h"

namespace vmscope {
namespace {

// Owners are re-resolved on link events; this slow sweep only catches what events miss
// (a process that re-execs while holding its tap).
constexpr int64_t kOwnerSweepSeconds = 60;

// One tap fd pair per device and direction: a host with 1000 VMs needs more than the
// default soft limit of 1024 descriptors.
void raise_fd_limit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string host_name() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
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

sigset_t stop_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  return mask;
}

// Before any thread starts: threads inherit the mask, so that SIGINT/SIGTERM reach only
// the signalfd instead of killing the process from the output thread.
Status block_stop_signals() {
  sigset_t mask = stop_signals();
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0)
    return Error::msg("block SIGINT/SIGTERM: pthread_sigmask failed");
  return {};
}

Result<UniqueFd> make_signalfd() {
  sigset_t mask = stop_signals();
  UniqueFd fd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) return Error::from_errno("create signalfd", errno);
  return fd;
}

class Agent {
 public:
  Agent(const Config& c, std::vector<std::unique_ptr<Sink>> sinks, NetPrograms programs,
        Netlink events, Netlink requests, std::unique_ptr<ProcTracker> procs)
      : config_(c),
        output_(std::move(sinks)),
        programs_(std::move(programs)),
        attacher_(programs_, c.attach_mode),
        collector_(programs_.net_stats_fd()),
        inventory_(inventory_options(c)),
        events_(std::move(events)),
        nl_(std::move(requests)),
        procs_(std::move(procs)),
        host_(host_name()) {}

  Status run() {
    if (auto st = resync(); !st) return st;
    auto timer = make_timer(config_.interval_s);
    if (!timer) return timer.error();
    auto sigfd = make_signalfd();
    if (!sigfd) return sigfd.error();
    spdlog::info("vmscope running: interval {}s, {} output(s), {} tap(s) found", config_.interval_s,
                 output_.size(), inventory_.taps().size());

    pollfd fds[4] = {{timer->get(), POLLIN, 0},
                     {events_.fd(), POLLIN, 0},
                     {sigfd->get(), POLLIN, 0},
                     {procs_ ? procs_->events_fd() : -1, POLLIN, 0}};
    uint64_t ticks = 0;
    Status result;
    while (config_.count == 0 || ticks < config_.count) {
      if (poll(fds, 4, -1) < 0) {
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
      if (fds[3].revents) on_proc_events();
      if (fds[0].revents) {
        uint64_t expirations = 0;
        if (read(timer->get(), &expirations, sizeof(expirations)) != sizeof(expirations)) continue;
        tick();
        ++ticks;
      }
    }
    output_.close();  // delivers what is queued, flushes every sink
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

  // VM starts and exits go out at once, stamped with when they happened.
  void on_proc_events() {
    std::vector<VmEvent> events = procs_->poll_events();
    if (events.empty()) return;
    batch_.clear();
    for (const VmEvent& ev : events) encode_vm_event(ev, batch_);
    write_all(batch_);
  }

  // Hands the batch to the writer thread; the next batch starts with the same capacity.
  void write_all(std::string& lines) {
    size_t capacity = lines.capacity();
    output_.write(std::move(lines));
    lines = std::string();
    lines.reserve(capacity);
  }

  // Tap owners are VM processes too (an unnamed one is reported under its tap's name).
  void track_tap_owners() {
    for (const auto& [_, tap] : inventory_.taps())
      if (tap.pid > 0) procs_->ensure_tracked(static_cast<uint32_t>(tap.pid), tap.vm, tap.named);
  }

  void tick() {
    const int64_t started = boottime_ns();
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
    size_t lines = encode_net(*snap, batch_);
    size_t vms = 0;
    if (procs_) {
      // Exec events before tap owners: a VM's start event must not be pre-empted by
      // tracking it as the owner of its tap.
      for (const VmEvent& ev : procs_->poll_events()) {
        encode_vm_event(ev, batch_);
        ++lines;
      }
      track_tap_owners();
      std::vector<VmEvent> events;
      auto resources = procs_->collect(events);
      for (const VmEvent& ev : events) {
        encode_vm_event(ev, batch_);
        ++lines;
      }
      if (resources) {
        lines += encode_resources(*resources, now, batch_);
        vms = resources->size();
      } else if (!proc_failing_) {
        spdlog::error("{}", resources.error().message);
      }
      proc_failing_ = !resources;
    }
    encode_self(self_metrics(started, lines, vms, snap->taps.size()), now, batch_);
    write_all(batch_);
  }

  SelfMetrics self_metrics(int64_t started, size_t lines, size_t vms, size_t taps) {
    SelfMetrics m;
    m.host = host_;
    m.lines = lines;
    m.vms = vms;
    m.taps = taps;
    SinkStats out = output_.totals();
    m.lines_written = out.lines_written;
    m.lines_dropped = out.lines_dropped;
    m.net_slots = programs_.slot_limit();
    m.net_slots_max = VS_MAX_SLOTS;
    m.net_far_slots = programs_.far_entries();
    m.net_far_slots_max = VS_MAX_SLOTS;
    m.tracked_procs_max = VS_MAX_PROCS;
    m.rss_bytes = own_rss_bytes();
    m.bpf_stats = bpf_stats_enabled();
    std::vector<int> fds = {programs_.ingress_prog_fd(), programs_.egress_prog_fd()};
    if (procs_) {
      m.tracked_procs = procs_->tracked();
      m.proc_events_lost = procs_->lost_events();
      for (int fd : procs_->programs().prog_fds()) fds.push_back(fd);
    }
    if (m.bpf_stats)
      for (int fd : fds) m.programs.push_back(program_stats(fd));
    m.tick_ns = static_cast<uint64_t>(boottime_ns() - started);
    return m;
  }

  const Config& config_;
  OutputWriter output_;
  NetPrograms programs_;
  NetAttacher attacher_;
  NetCollector collector_;
  Inventory inventory_;
  Netlink events_;
  Netlink nl_;
  std::string batch_;
  std::set<std::string> failed_;  // attach errors already logged
  bool collect_failing_ = false;
  bool proc_failing_ = false;
  std::unique_ptr<ProcTracker> procs_;  // null when the kernel lacks the process hooks
  std::string host_;
  int64_t last_sweep_ns_ = realtime_ns();
};

}  // namespace

Status run_agent(const Config& config, std::vector<std::unique_ptr<Sink>> sinks) {
  if (auto st = block_stop_signals(); !st) return st;
  raise_fd_limit();
  auto programs = NetPrograms::load();
  if (!programs) return programs.error();
  // Subscribe before the first dump so that no change falls between the two.
  auto events = Netlink::open(RTMGRP_LINK);
  if (!events) return events.error();
  auto requests = Netlink::open(0);
  if (!requests) return requests.error();
  // Process metrics are a feature the kernel may lack (tp_btf, task iterators):
  // without them the network path still runs.
  std::unique_ptr<ProcTracker> procs;
  if (auto t = ProcTracker::create(process_options(config)); t)
    procs = std::move(*t);
  else
    spdlog::warn("process metrics disabled: {}", t.error().message);
  Agent agent(config, std::move(sinks), std::move(*programs), std::move(*events),
              std::move(*requests), std::move(procs));
  return agent.run();
}

}  // namespace vmscope
