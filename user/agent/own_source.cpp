// OwnSource: vmscope's own programs, attached to every VM tap and bridge, and its own
// process tracker; optionally pinned for `vmscope top` (SharedMapPublisher).
#include <spdlog/spdlog.h>

#include <optional>
#include <set>

#include "agent/sample_source.h"
#include "attach/net_attacher.h"
#include "attach/net_programs.h"

namespace vmscope {
namespace {

class OwnSource final : public SampleSource {
 public:
  OwnSource(NetPrograms programs, AttachMode mode, std::unique_ptr<ProcTracker> procs)
      : programs_(std::move(programs)),
        attacher_(programs_, mode),
        collector_(NetMapFds{programs_.net_stats_fd(), programs_.service_stats_fd(),
                             programs_.service_pending_fd()}),
        procs_(std::move(procs)) {}
  OwnSource(const OwnSource&) = delete;
  OwnSource& operator=(const OwnSource&) = delete;

  // Pins the maps for `vmscope top` (for as long as this source lives).
  void publish_maps() {
    auto paths = shared_map_paths();
    if (!paths) {
      spdlog::info("maps not shared with vmscope top: {}", paths.error().message);
      return;
    }
    SharedMapPublisher::Maps maps;
    maps.net_stats = programs_.net_stats_fd();
    maps.if_slot = programs_.if_slot_fd();
    maps.if_slot_far = programs_.if_slot_far_fd();
    maps.service_stats = programs_.service_stats_fd();
    if (procs_) maps.tracked = procs_->programs().tracked_fd();
    if (auto pub = SharedMapPublisher::create(*paths, maps)) publisher_.emplace(std::move(*pub));
  }

  ProcTracker* procs() const override { return procs_.get(); }

  void sync_devices(const Inventory& inv, Netlink&) override {
    std::set<int> before;
    for (const auto& [ifindex, _] : attacher_.devices()) before.insert(ifindex);
    for (const Error& e : attacher_.sync(counted_devices(inv))) {
      if (failed_.insert(e.message).second) spdlog::error("{}", e.message);
    }
    for (const auto& [ifindex, dev] : attacher_.devices()) {
      if (!before.erase(ifindex)) spdlog::info("monitoring {} (ifindex {})", dev.ifname, ifindex);
    }
  }

  Status collect_net(const Inventory& inv, Netlink& nl, int64_t timestamp_ns,
                     NetSnapshot& out) override {
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
    m.net_slots = programs_.slot_limit();
    m.net_slots_max = programs_.capacity();
    m.net_far_slots = programs_.far_entries();
    if (auto pending = collector_.pending_entries()) {
      m.service_pending = *pending;
      m.service_pending_max = VS_SERVICE_PENDING_MAX;
    }
    m.net_far_slots_max = programs_.capacity();
    programs_.program_fds(prog_fds);
    collector_.program_fds(prog_fds);
  }

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
};

}  // namespace

Result<std::unique_ptr<SampleSource>> open_own_source(AttachMode mode, uint32_t net_slots,
                                                      const VmProcessOptions& procs, bool publish) {
  auto programs = NetPrograms::load(net_slots);
  if (!programs) return programs.error();
  auto source = std::make_unique<OwnSource>(std::move(*programs), mode,
                                            tracker_or_none(ProcTracker::create(procs)));
  if (publish) source->publish_maps();
  return std::unique_ptr<SampleSource>(std::move(source));
}

}  // namespace vmscope
