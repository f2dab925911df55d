// The collection engine shared by `vmscope run` and `vmscope top`: keeps the network
// programs attached to every VM tap and bridge, tracks VM processes, and turns one call
// of sample() into one tick's view (network counters, per-VM resources, VM events).
// What happens with a sample (line protocol, a screen) is the caller's business.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/proc_tracker.h"
#include "attach/net_attacher.h"
#include "attach/net_programs.h"
#include "attach/shared_maps.h"
#include "config/config.h"
#include "discover/inventory.h"
#include "discover/links.h"
#include "drain/net_snapshot.h"
#include "drain/vm_resources.h"
#include "output/self_lines.h"

namespace vmscope {

// One tick. Views inside (names) stay valid until the engine next changes state.
struct EngineSample {
  int64_t timestamp_ns = 0;        // realtime, stamped on the lines
  int64_t boottime_ns = 0;         // when it was taken: rates divide by differences of this
  std::optional<NetSnapshot> net;  // nullopt: the drain failed this tick
  std::optional<std::vector<VmResources>> vms;  // nullopt: no process metrics this tick
  std::vector<VmEvent> events;                  // VM starts/exits since the last call
};

enum class EngineMode {
  kOwn,      // loads and attaches its own programs (top without a running agent)
  kPublish,  // the same, and shares its maps with top (vmscope run)
  kShared,   // reads the maps of the agent running in this namespace; attaches nothing
};

class Engine {
 public:
  // Loads the programs (or opens the shared maps) and subscribes to link events;
  // attaches nothing yet (start()).
  static Result<std::unique_ptr<Engine>> create(const Config& config, EngineMode mode);
  // kShared when an agent runs in this namespace and publishes its maps, else kOwn.
  static Result<std::unique_ptr<Engine>> create_for_viewer(const Config& config);
  ~Engine();

  // Attaches to every VM tap and bridge there is now.
  Status start();
  // Readable when link changes or VM process events wait.
  int link_events_fd() const { return events_.fd(); }
  int proc_events_fd() const { return procs_ ? procs_->events_fd() : -1; }
  // Applies waiting link changes: a new tap is counted from now, not from the next tick.
  void on_link_events();
  // VM starts and exits that happened since the last call.
  std::vector<VmEvent> poll_events();
  // One tick's collection.
  void sample(EngineSample& out);
  // The engine's own health for self-metrics (everything but lines and timings).
  void describe(SelfMetrics& m) const;
  const Inventory& inventory() const { return inventory_; }
  EngineMode mode() const { return mode_; }
  int shared_agent_pid() const { return shared_ ? shared_->agent_pid : 0; }
  // Removes every attachment (also done by the destructor).
  void detach_all();

  struct Key {
   private:
    Key() = default;
    friend class Engine;
  };
  Engine(Key, const Config& c, std::optional<NetPrograms> programs,
         std::optional<SharedMaps> shared, Netlink events, Netlink requests,
         std::unique_ptr<ProcTracker> procs);

 private:
  Status resync();
  void sync_attachments();
  void track_tap_owners();
  // kShared: which slot the agent gave each of our taps and bridges, read from if_slot.
  void read_shared_slots();
  void publish(const std::vector<VmEvent>& events);

  EngineMode mode_;
  std::optional<NetPrograms> programs_;    // kOwn, kPublish
  std::unique_ptr<NetAttacher> attacher_;  // kOwn, kPublish
  std::optional<SharedMaps> shared_;       // kShared
  std::optional<SharedMapPublisher> publisher_;
  std::map<int, AttachedDevice> shared_devices_;  // kShared: ifindex -> the agent's slot
  uint32_t shared_slot_limit_ = 0;
  uint64_t shared_event_seq_ = 0;
  NetCollector collector_;
  Inventory inventory_;
  Netlink events_;
  Netlink nl_;
  std::unique_ptr<ProcTracker> procs_;  // null when the kernel lacks the process hooks
  std::set<std::string> failed_;        // attach errors already logged
  bool collect_failing_ = false;
  bool proc_failing_ = false;
  int64_t last_sweep_ns_ = 0;
};

}  // namespace vmscope
