// SharedSource: the maps a running `vmscope run` pins in this network namespace, read
// only. The agent attaches on its own schedule, so each device's slot is looked up in
// its if_slot map every tick; its VM events come from its recent_events map.
#include <bpf/bpf.h>

#include <algorithm>

#include "agent/sample_source.h"
#include "attach/kept_state.h"

namespace vmscope {
namespace {

class SharedSource final : public SampleSource {
 public:
  SharedSource(SharedMaps maps, std::unique_ptr<ProcTracker> procs)
      : maps_(std::move(maps)),
        // no service_pending: the agent sweeps it
        collector_(NetMapFds{maps_.net_stats.get(), maps_.service_stats.get()}),
        procs_(std::move(procs)) {}
  SharedSource(const SharedSource&) = delete;
  SharedSource& operator=(const SharedSource&) = delete;

  ProcTracker* procs() const override { return procs_.get(); }

  // Nothing to attach: the agent's slots are looked up every tick.
  void sync_devices(const Inventory&, Netlink&) override {}

  Status collect_net(const Inventory& inv, Netlink& nl, int64_t timestamp_ns,
                     NetSnapshot& out) override {
    read_slots(inv);
    read_carry_maps();
    return collector_.collect(inv, devices_, nl, slot_limit_, timestamp_ns, out);
  }

  std::vector<VmEvent> poll_events() override { return maps_.new_events(event_seq_); }

  // The agent publishes its own events.
  void emitted(std::span<const VmEvent>) override {}

  void describe(SelfMetrics& m, std::vector<int>& prog_fds) const override {
    collector_.program_fds(prog_fds);  // top's own summing program, if loaded
    // In use, as the agent reports it (slot_limit_ is the drain range).
    m.net_slots = static_cast<uint32_t>(devices_.size());
    m.net_slots_max = collector_.slot_capacity();  // the agent's
    m.net_far_slots = 0;
    m.net_far_slots_max = m.net_slots_max;
  }

  void detach_all() override {}

  std::string label() const override {
    return fmt::format("reading vmscope run (pid {})", maps_.agent_pid);
  }

 private:
  // Which slot the agent gave each of our taps and bridges, read from its if_slot.
  void read_slots(const Inventory& inv) {
    SlotTable devices;
    uint32_t limit = 0;
    for (const auto& [ifindex, name] : counted_devices(inv)) {
      auto key = static_cast<uint32_t>(ifindex);
      uint32_t value = 0;  // slot + 1; 0 = the agent does not count it (yet)
      int fd = key < VS_IFINDEX_DIRECT_MAX ? maps_.if_slot.get() : maps_.if_slot_far.get();
      if (bpf_map_lookup_elem(fd, &key, &value) != 0 || value == 0) continue;
      CountedDevice& d = devices[ifindex];
      d.ifname = name;
      d.slot = value - 1;
      limit = std::max(limit, value);
    }
    devices_ = std::move(devices);
    slot_limit_ = limit;
  }

  // What the agent carried over from an earlier layout's maps (a few entries, or none).
  void read_carry_maps() {
    if (!maps_.net_carry.valid() || !maps_.service_carry.valid()) return;
    if (auto c = read_carry(maps_.net_carry.get(), maps_.service_carry.get(), this_layout()))
      carry_ = std::move(*c);
    collector_.set_carry(&carry_);
  }

  SharedMaps maps_;  // outlives the tracker, which reads its `tracked` map
  NetCollector collector_;
  std::unique_ptr<ProcTracker> procs_;
  SlotTable devices_;  // ifindex -> the agent's slot
  uint32_t slot_limit_ = 0;
  uint64_t event_seq_ = 0;
  CarryTable carry_;
};

}  // namespace

std::unique_ptr<SampleSource> open_shared_source(SharedMaps maps, const VmProcessOptions& procs) {
  auto tracker =
      maps.tracked.valid()
          ? ProcTracker::create_reader(procs, maps.tracked.get())
          : Result<std::unique_ptr<ProcTracker>>(Error::msg("the agent has no process metrics"));
  return std::make_unique<SharedSource>(std::move(maps), tracker_or_none(std::move(tracker)));
}

}  // namespace vmscope
