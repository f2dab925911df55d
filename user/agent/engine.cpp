#include "agent/engine.h"

#include <bpf/bpf.h>
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

Result<std::unique_ptr<Engine>> Engine::create(const Config& config, EngineMode mode) {
  raise_fd_limit();
  std::optional<NetPrograms> programs;
  std::optional<SharedMaps> shared;
  if (mode == EngineMode::kShared) {
    auto paths = shared_map_paths();
    if (!paths) return paths.error();
    auto found = SharedMaps::open(*paths);
    if (!found) return found.error();
    if (!*found) return Error::msg("no vmscope run publishes its maps in this network namespace");
    shared = std::move(**found);
  } else {
    auto loaded = NetPrograms::load();
    if (!loaded) return loaded.error();
    programs = std::move(*loaded);
  }
  // Subscribe before the first dump so that no change falls between the two.
  auto events = Netlink::open(RTMGRP_LINK);
  if (!events) return events.error();
  auto requests = Netlink::open(0);
  if (!requests) return requests.error();
  // Process metrics are a feature the kernel may lack (tp_btf, task iterators):
  // without them the network path still runs.
  std::unique_ptr<ProcTracker> procs;
  auto tracker =
      shared ? (shared->tracked.valid()
                    ? ProcTracker::create_reader(process_options(config), shared->tracked.get())
                    : Error::msg("the agent has no process metrics"))
             : ProcTracker::create(process_options(config));
  if (tracker)
    procs = std::move(*tracker);
  else
    spdlog::warn("process metrics disabled: {}", tracker.error().message);
  auto engine =
      std::make_unique<Engine>(Key{}, config, std::move(programs), std::move(shared),
                               std::move(*events), std::move(*requests), std::move(procs));
  engine->mode_ = mode;
  if (mode == EngineMode::kPublish) {
    if (auto paths = shared_map_paths(); paths) {
      SharedMapPublisher::Maps maps;
      maps.net_stats = engine->programs_->net_stats_fd();
      maps.if_slot = engine->programs_->if_slot_fd();
      maps.if_slot_far = engine->programs_->if_slot_far_fd();
      if (engine->procs_) maps.tracked = engine->procs_->programs().tracked_fd();
      if (auto pub = SharedMapPublisher::create(*paths, maps))
        engine->publisher_.emplace(std::move(*pub));
    } else {
      spdlog::info("maps not shared with vmscope top: {}", paths.error().message);
    }
  }
  return engine;
}

Result<std::unique_ptr<Engine>> Engine::create_for_viewer(const Config& config) {
  auto paths = shared_map_paths();
  if (!paths) return paths.error();
  auto found = SharedMaps::open(*paths);
  if (!found) return found.error();
  return create(config, *found ? EngineMode::kShared : EngineMode::kOwn);
}

Engine::Engine(Key, const Config& c, std::optional<NetPrograms> programs,
               std::optional<SharedMaps> shared, Netlink events, Netlink requests,
               std::unique_ptr<ProcTracker> procs)
    : mode_(shared ? EngineMode::kShared : EngineMode::kOwn),
      programs_(std::move(programs)),
      shared_(std::move(shared)),
      collector_(programs_ ? programs_->net_stats_fd() : shared_->net_stats.get()),
      inventory_(inventory_options(c)),
      events_(std::move(events)),
      nl_(std::move(requests)),
      procs_(std::move(procs)),
      last_sweep_ns_(realtime_ns()) {
  if (programs_) attacher_ = std::make_unique<NetAttacher>(*programs_, c.attach_mode);
}

Engine::~Engine() {
  detach_all();
}

void Engine::detach_all() {
  if (attacher_) attacher_->detach_all();
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
  if (!attacher_) return;  // reading an agent: its slots are looked up every tick
  std::map<int, std::string> wanted;
  for (const auto& [ifindex, tap] : inventory_.taps()) wanted[ifindex] = tap.link.name;
  for (const auto& [ifindex, br] : inventory_.vm_bridges()) wanted[ifindex] = br.name;
  std::set<int> before;
  for (const auto& [ifindex, _] : attacher_->devices()) before.insert(ifindex);
  for (const Error& e : attacher_->sync(wanted)) {
    if (failed_.insert(e.message).second) spdlog::error("{}", e.message);
  }
  for (const auto& [ifindex, dev] : attacher_->devices()) {
    if (!before.erase(ifindex)) {
      collector_.on_attached(ifindex, nl_);
      spdlog::info("monitoring {} (ifindex {})", dev.ifname, ifindex);
    }
  }
  for (int gone : before) collector_.on_detached(gone);
}

void Engine::read_shared_slots() {
  std::vector<std::pair<int, std::string>> wanted;
  for (const auto& [ifindex, tap] : inventory_.taps()) wanted.emplace_back(ifindex, tap.link.name);
  for (const auto& [ifindex, br] : inventory_.vm_bridges()) wanted.emplace_back(ifindex, br.name);
  std::map<int, AttachedDevice> devices;
  uint32_t limit = 0;
  for (const auto& [ifindex, name] : wanted) {
    auto key = static_cast<uint32_t>(ifindex);
    uint32_t value = 0;  // slot + 1; 0 = the agent does not count it (yet)
    int fd = key < VS_IFINDEX_DIRECT_MAX ? shared_->if_slot.get() : shared_->if_slot_far.get();
    if (bpf_map_lookup_elem(fd, &key, &value) != 0 || value == 0) continue;
    AttachedDevice& d = devices[ifindex];
    d.ifname = name;
    d.slot = value - 1;
    limit = std::max(limit, value);
    auto old = shared_devices_.find(ifindex);
    if (old == shared_devices_.end() || old->second.slot != d.slot)
      collector_.on_attached(ifindex, nl_);
  }
  for (const auto& [ifindex, _] : shared_devices_)
    if (!devices.count(ifindex)) collector_.on_detached(ifindex);
  shared_devices_ = std::move(devices);
  shared_slot_limit_ = limit;
}

void Engine::publish(const std::vector<VmEvent>& events) {
  if (publisher_ && !events.empty()) publisher_->publish(events);
}

std::vector<VmEvent> Engine::poll_events() {
  if (shared_) return shared_->new_events(shared_event_seq_);
  if (!procs_) return {};
  auto events = procs_->poll_events();
  publish(events);
  return events;
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
  // The agent attaches new devices on its own schedule: look its slots up every tick.
  if (shared_) read_shared_slots();
  auto snap = attacher_ ? collector_.collect(inventory_, *attacher_, nl_, programs_->slot_limit(),
                                             out.timestamp_ns)
                        : collector_.collect(inventory_, shared_devices_, nl_, shared_slot_limit_,
                                             out.timestamp_ns);
  if (snap) {
    out.net = std::move(*snap);
  } else {
    // The next tick reads the same cumulative counters: nothing is lost.
    if (!collect_failing_) spdlog::error("{}", snap.error().message);
    out.net.reset();
  }
  collect_failing_ = !snap;

  out.vms.reset();
  // Exec events before tap owners: a VM's start event must not be pre-empted by
  // tracking it as the owner of its tap.
  out.events = poll_events();
  if (!procs_) return;
  track_tap_owners();
  size_t polled = out.events.size();
  auto resources = procs_->collect(out.events);
  if (!shared_)
    publish(std::vector<VmEvent>(out.events.begin() + static_cast<std::ptrdiff_t>(polled),
                                 out.events.end()));
  if (resources)
    out.vms = std::move(*resources);
  else if (!proc_failing_)
    spdlog::error("{}", resources.error().message);
  proc_failing_ = !resources;
}

void Engine::describe(SelfMetrics& m) const {
  m.net_slots = programs_ ? programs_->slot_limit() : shared_slot_limit_;
  m.net_slots_max = VS_MAX_SLOTS;
  m.net_far_slots = programs_ ? programs_->far_entries() : 0;
  m.net_far_slots_max = VS_MAX_SLOTS;
  m.tracked_procs_max = VS_MAX_PROCS;
  m.bpf_stats = bpf_stats_enabled();
  // Every program this engine loaded, from their owners' objects.
  std::vector<int> fds;
  if (programs_) programs_->program_fds(fds);
  collector_.program_fds(fds);
  if (procs_) {
    m.tracked_procs = procs_->tracked();
    m.proc_events_lost = procs_->lost_events();
    procs_->programs().program_fds(fds);
  }
  if (m.bpf_stats)
    for (int fd : fds) m.programs.push_back(program_stats(fd));
}

}  // namespace vmscope
