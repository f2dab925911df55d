// The collection engine shared by `vmscope run` and `vmscope top`: keeps the inventory of
// VM taps and bridges current from link events, has them counted by its sample source
// (own programs, or a running agent's maps), and turns one call of sample() into one
// tick's view (network counters, per-VM resources, VM events). What happens with a
// sample (line protocol, a screen) is the caller's business.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/sample_source.h"
#include "attach/attach_mode.h"
#include "discover/inventory.h"
#include "discover/links.h"
#include "discover/vm_processes.h"
#include "drain/tick_sample.h"
#include "output/self_lines.h"

namespace vmscope {

// What the engine needs of the configuration (built once by each front end).
struct EngineOptions {
  AttachMode attach_mode = AttachMode::kAuto;  // when it attaches its own programs
  uint32_t net_slots = 0;                      // devices its own programs can count; 0: auto
  InventoryOptions inventory;                  // naming taps and their VMs
  VmProcessOptions processes;                  // naming VM processes
};

class Engine {
 public:
  // Opens its sample source (choice: see SourceChoice) and subscribes to link events;
  // attaches nothing yet (start()).
  static Result<std::unique_ptr<Engine>> create(const EngineOptions& options, SourceChoice choice);
  ~Engine();

  // Attaches to every VM tap and bridge there is now.
  Status start();
  // Readable when link changes or VM process events wait.
  int link_events_fd() const { return events_.fd(); }
  int proc_events_fd() const;
  // Applies waiting link changes: a new tap is counted from now, not from the next tick.
  void on_link_events();
  // VM starts and exits that happened since the last call.
  std::vector<VmEvent> poll_events() { return source_->poll_events(); }
  // One tick's collection.
  void sample(TickSample& out);
  // The engine's own health for self-metrics (everything but lines and timings).
  void describe(SelfMetrics& m) const;
  const Inventory& inventory() const { return inventory_; }
  // What it reads: "own programs" or "reading vmscope run (pid N)".
  std::string source_label() const { return source_->label(); }
  // New naming rules (a reload): taps and VM processes are named again from the next tick.
  void set_naming(const EngineOptions& options);
  // Removes every attachment (also done by the destructor).
  void detach_all() { source_->detach_all(); }
  // Devices still to attach after the last sync; continue_sync() attaches more.
  bool sync_pending() const { return source_->sync_pending(); }
  void continue_sync() { source_->sync_devices(inventory_, nl_); }

  struct Key {
   private:
    Key() = default;
    friend class Engine;
  };
  Engine(Key, const EngineOptions& options, std::unique_ptr<SampleSource> source, Netlink events,
         Netlink requests);

 private:
  Status resync();
  void track_tap_owners(ProcTracker& procs);

  std::unique_ptr<SampleSource> source_;
  Inventory inventory_;
  Netlink events_;
  Netlink nl_;
  bool collect_failing_ = false;
  bool proc_failing_ = false;
  int64_t last_sweep_ns_ = 0;
};

}  // namespace vmscope
