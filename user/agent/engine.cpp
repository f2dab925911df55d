#include "agent/engine.h"

#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

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

}  // namespace

Result<std::unique_ptr<Engine>> Engine::create(const EngineOptions& options, SourceChoice choice) {
  raise_fd_limit();
  auto source =
      open_sample_source(choice, options.attach_mode, options.net_slots, options.processes);
  if (!source) return source.error();
  // Subscribe before the first dump so that no change falls between the two.
  auto events = Netlink::open(RTMGRP_LINK);
  if (!events) return events.error();
  auto requests = Netlink::open(0);
  if (!requests) return requests.error();
  return std::make_unique<Engine>(Key{}, options, std::move(*source), std::move(*events),
                                  std::move(*requests));
}

Engine::Engine(Key, const EngineOptions& options, std::unique_ptr<SampleSource> source,
               Netlink events, Netlink requests)
    : source_(std::move(source)),
      inventory_(options.inventory),
      events_(std::move(events)),
      nl_(std::move(requests)),
      last_sweep_ns_(realtime_ns()) {}

Engine::~Engine() {
  detach_all();
}

int Engine::proc_events_fd() const {
  const ProcTracker* procs = source_->procs();
  return procs ? procs->events_fd() : -1;
}

Status Engine::start() {
  return resync();
}

// Full state from a link dump: at start-up and after an event overrun.
Status Engine::resync() {
  auto links = nl_.dump_links();
  if (!links) return links.error();
  inventory_.reset(*links);
  inventory_.resolve_owners();
  source_->sync_devices(inventory_, nl_);
  return {};
}

void Engine::on_link_events() {
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
  if (changed) source_->sync_devices(inventory_, nl_);
}

// Tap owners are VM processes too (an unnamed one is reported under its tap's name).
void Engine::track_tap_owners(ProcTracker& procs) {
  for (const auto& [_, tap] : inventory_.taps())
    if (tap.pid > 0) procs.ensure_tracked(static_cast<uint32_t>(tap.pid), tap.vm, tap.named);
}

void Engine::sample(TickSample& out) {
  out.timestamp_ns = realtime_ns();
  out.boottime_ns = boottime_ns();
  out.events.clear();
  if (out.timestamp_ns - last_sweep_ns_ > kOwnerSweepSeconds * 1'000'000'000) {
    inventory_.mark_all_dirty();
    last_sweep_ns_ = out.timestamp_ns;
  }
  inventory_.resolve_owners();
  // Into last tick's snapshot: its vectors keep their capacity (no fresh pages per tick).
  if (!out.net) out.net.emplace();
  auto st = source_->collect_net(inventory_, nl_, out.timestamp_ns, *out.net);
  if (!st) {
    // The next tick reads the same cumulative counters: nothing is lost.
    if (!collect_failing_) spdlog::error("{}", st.error().message);
    out.net.reset();
  }
  collect_failing_ = !st;

  // Exec events before tap owners: a VM's start event must not be pre-empted by
  // tracking it as the owner of its tap.
  out.events = source_->poll_events();
  ProcTracker* procs = source_->procs();
  if (!procs) {
    out.vms.reset();
    return;
  }
  track_tap_owners(*procs);
  size_t polled = out.events.size();
  if (!out.vms) out.vms.emplace();  // last tick's rows: their capacity is reused
  auto proc_st = procs->collect(out.events, *out.vms);
  source_->emitted(std::span<const VmEvent>(out.events).subspan(polled));
  if (!proc_st) {
    if (!proc_failing_) spdlog::error("{}", proc_st.error().message);
    out.vms.reset();
  }
  proc_failing_ = !proc_st;
}

void Engine::set_naming(const EngineOptions& options) {
  inventory_.set_naming(options.inventory.naming, options.inventory.overrides);
  if (ProcTracker* procs = source_->procs()) procs->set_naming(options.processes);
}

void Engine::describe(SelfMetrics& m) const {
  m.tracked_procs_max = VS_MAX_PROCS;
  m.bpf_stats = bpf_stats_enabled();
  // Every program this engine loaded, from their owners' objects.
  std::vector<int> fds;
  source_->describe(m, fds);
  if (const ProcTracker* procs = source_->procs()) {
    m.tracked_procs = procs->tracked();
    m.proc_events_lost = procs->lost_events();
    procs->programs().program_fds(fds);
  }
  if (m.bpf_stats)
    for (int fd : fds) m.programs.push_back(program_stats(fd));
}

}  // namespace vmscope
