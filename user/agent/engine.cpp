#include "agent/engine.h"

#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include "agent/options.h"

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

Result<std::unique_ptr<Engine>> Engine::create(const Config& config) {
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
  return std::make_unique<Engine>(Key{}, config, std::move(*programs), std::move(*events),
                                  std::move(*requests), std::move(procs));
}

Engine::Engine(Key, const Config& c, NetPrograms programs, Netlink events, Netlink requests,
               std::unique_ptr<ProcTracker> procs)
    : programs_(std::move(programs)),
      attacher_(programs_, c.attach_mode),
      collector_(programs_.net_stats_fd()),
      inventory_(inventory_options(c)),
      events_(std::move(events)),
      nl_(std::move(requests)),
      procs_(std::move(procs)),
      last_sweep_ns_(realtime_ns()) {}

Engine::~Engine() {
  attacher_.detach_all();
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
  sync_attachments();
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
  if (changed) sync_attachments();
}

void Engine::sync_attachments() {
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

std::vector<VmEvent> Engine::poll_events() {
  if (!procs_) return {};
  return procs_->poll_events();
}

// Tap owners are VM processes too (an unnamed one is reported under its tap's name).
void Engine::track_tap_owners() {
  for (const auto& [_, tap] : inventory_.taps())
    if (tap.pid > 0) procs_->ensure_tracked(static_cast<uint32_t>(tap.pid), tap.vm, tap.named);
}

void Engine::sample(EngineSample& out) {
  out.timestamp_ns = realtime_ns();
  out.boottime_ns = boottime_ns();
  out.events.clear();
  if (out.timestamp_ns - last_sweep_ns_ > kOwnerSweepSeconds * 1'000'000'000) {
    inventory_.mark_all_dirty();
    last_sweep_ns_ = out.timestamp_ns;
  }
  inventory_.resolve_owners();
  auto snap =
      collector_.collect(inventory_, attacher_, nl_, programs_.slot_limit(), out.timestamp_ns);
  if (snap) {
    out.net = std::move(*snap);
  } else {
    // The next tick reads the same cumulative counters: nothing is lost.
    if (!collect_failing_) spdlog::error("{}", snap.error().message);
    out.net.reset();
  }
  collect_failing_ = !snap;

  out.vms.reset();
  if (!procs_) return;
  // Exec events before tap owners: a VM's start event must not be pre-empted by
  // tracking it as the owner of its tap.
  out.events = procs_->poll_events();
  track_tap_owners();
  auto resources = procs_->collect(out.events);
  if (resources)
    out.vms = std::move(*resources);
  else if (!proc_failing_)
    spdlog::error("{}", resources.error().message);
  proc_failing_ = !resources;
}

void Engine::describe(SelfMetrics& m) const {
  m.net_slots = programs_.slot_limit();
  m.net_slots_max = VS_MAX_SLOTS;
  m.net_far_slots = programs_.far_entries();
  m.net_far_slots_max = VS_MAX_SLOTS;
  m.tracked_procs_max = VS_MAX_PROCS;
  m.bpf_stats = bpf_stats_enabled();
  std::vector<int> fds = {programs_.ingress_prog_fd(), programs_.egress_prog_fd()};
  if (procs_) {
    m.tracked_procs = procs_->tracked();
    m.proc_events_lost = procs_->lost_events();
    for (int fd : procs_->programs().prog_fds()) fds.push_back(fd);
  }
  if (m.bpf_stats)
    for (int fd : fds) m.programs.push_back(program_stats(fd));
}

}  // namespace vmscope
