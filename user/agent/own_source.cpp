// OwnSource: vmscope's own programs, attached to every VM tap and bridge, and its own
// process tracker. The agent's (publish) holds the namespace's lock: it continues the
// counters the previous agent kept, keeps its own for the next one (attach/kept_state.h)
// and pins its maps for `vmscope top` (SharedMapPublisher).
#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <set>

#include "agent/sample_source.h"
#include "attach/net_attacher.h"
#include "attach/net_programs.h"

namespace vmscope {
namespace {

// Only the holder of the namespace's lock keeps state; everyone else attaches with a
// clsact priority of its own, so that it never replaces or removes the holder's filters.
TcOwner owner_of(const std::optional<SharedMapPublisher>& publisher) {
  if (!publisher) return TcOwner{kTransientClsactPriority, {}};
  return TcOwner{kClsactPriority, publisher->keep_dir()};
}

class OwnSource final : public SampleSource {
 public:
  OwnSource(std::optional<SharedMapPublisher> publisher, NetPrograms programs, AttachMode mode,
            std::unique_ptr<ProcTracker> procs)
      : programs_(std::move(programs)),
        attacher_(programs_, mode, owner_of(publisher)),
        publisher_(std::move(publisher)),
        collector_(NetMapFds{programs_.net_stats_fd(), programs_.service_stats_fd(),
                             programs_.service_pending_fd()}),
        procs_(std::move(procs)) {}
  OwnSource(const OwnSource&) = delete;
  OwnSource& operator=(const OwnSource&) = delete;

  // Pins the per-run maps for `vmscope top`.
  void publish_maps() {
    if (publisher_) publisher_->publish_maps(procs_ ? procs_->programs().tracked_fd() : -1);
  }

  ProcTracker* procs() const override { return procs_.get(); }

  void sync_devices(const Inventory& inv, Netlink&) override {
    std::set<int> before;
    for (const auto& [ifindex, _] : attacher_.devices()) before.insert(ifindex);
    const bool was_pending = attacher_.pending();
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (attach_budget_.count() > 0) deadline = std::chrono::steady_clock::now() + attach_budget_;
    for (const Error& e : attacher_.sync(counted_devices(inv), deadline)) {
      if (failed_.insert(e.message).second) spdlog::error("{}", e.message);
    }
    for (const auto& [ifindex, dev] : attacher_.devices()) {
      if (!before.erase(ifindex)) spdlog::info("monitoring {} (ifindex {})", dev.ifname, ifindex);
    }
    if (was_pending && !attacher_.pending())
      spdlog::info("all {} VM taps and bridges attached", attacher_.devices().size());
  }

  bool sync_pending() const override { return attacher_.pending(); }

  // How long one sync may attach before the agent ticks again (0: no limit).
  void set_attach_budget(std::chrono::milliseconds budget) { attach_budget_ = budget; }

  Status collect_net(const Inventory& inv, Netlink& nl, int64_t timestamp_ns,
                     NetSnapshot& out) override {
    collector_.set_carry(programs_.carry_for_tick());
    return collector_.collect(inv, attacher_.devices(), nl, programs_.slot_limit(), timestamp_ns,
                              out);
  }

  std::vector<VmEvent> poll_events() override {
    if (!procs_) return {};
    auto events = procs_->poll_events();
    emitted(events);
    return events;
  }

  void emitted(std::span<const VmEvent> events) override {
    if (publisher_ && !events.empty())
      publisher_->publish(std::vector<VmEvent>(events.begin(), events.end()));
  }

  void describe(SelfMetrics& m, std::vector<int>& prog_fds) const override {
    // The slots in use, as net_slots_max is compared with: not the drain range
    // (slot_limit), which a device on a high slot keeps above the count after churn.
    m.net_slots = programs_.slots_used();
    m.net_slots_max = programs_.capacity();
    m.net_far_slots = programs_.far_entries();
    if (auto pending = collector_.pending_entries()) {
      m.service_pending = *pending;
      m.service_pending_max = VS_SERVICE_PENDING_MAX;
    }
    m.net_far_slots_max = programs_.capacity();
    m.kept_state_resets = programs_.kept_state_reset() ? 1 : 0;
    m.kept_state_migrations = programs_.kept_state_migrated() ? 1 : 0;
    m.net_continued = attacher_.continued();
    programs_.program_fds(prog_fds);
    collector_.program_fds(prog_fds);
  }

  // Kept attachments stay (the agent's, for its next run); all others go.
  void detach_all() override { attacher_.detach_all(); }

  std::string label() const override { return "own programs"; }

 private:
  // Destroyed bottom-up: the tracker first, the programs (which the attacher uses) last.
  NetPrograms programs_;
  NetAttacher attacher_;
  std::optional<SharedMapPublisher> publisher_;
  NetCollector collector_;
  std::unique_ptr<ProcTracker> procs_;
  std::set<std::string> failed_;  // attach errors already logged
  std::chrono::milliseconds attach_budget_{0};
};

}  // namespace

Result<std::unique_ptr<SampleSource>> open_own_source(AttachMode mode, uint32_t net_slots,
                                                      const VmProcessOptions& procs, bool publish) {
  // The lock first: only its holder may adopt what the previous agent kept.
  std::optional<SharedMapPublisher> publisher;
  if (publish) {
    if (auto paths = shared_map_paths(); !paths)
      spdlog::warn("counters not kept for the next run: {}", paths.error().message);
    else if (auto acquired = SharedMapPublisher::acquire(*paths))
      publisher.emplace(std::move(*acquired));
  }
  auto programs = NetPrograms::load(net_slots, publisher ? publisher->keep_dir() : std::string());
  if (!programs) return programs.error();
  auto source = std::make_unique<OwnSource>(std::move(publisher), std::move(*programs), mode,
                                            tracker_or_none(ProcTracker::create(procs)));
  if (publish) {
    source->publish_maps();
    // The agent ticks while a cold start attaches: its first point within a second.
    source->set_attach_budget(std::chrono::milliseconds(300));
  }
  return std::unique_ptr<SampleSource>(std::move(source));
}

}  // namespace vmscope
