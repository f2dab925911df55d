// Where the engine's counters come from. Two implementations, chosen once by
// open_sample_source():
// - OwnSource (own_source.cpp): loads the programs, attaches them to every VM tap and
//   bridge and tracks VM processes itself (`vmscope run`, which also pins its maps for
//   top; `vmscope top` when no agent runs or with --own).
// - SharedSource (shared_source.cpp): reads the maps a running `vmscope run` pins in this
//   network namespace; attaches nothing and writes nothing (`vmscope top` next to it).
// The engine does the rest the same way for both: inventory, link events, tap owners,
// the per-tick order and its error logging.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agent/proc_tracker.h"
#include "attach/attach_mode.h"
#include "attach/shared_maps.h"
#include "discover/inventory.h"
#include "discover/links.h"
#include "discover/vm_processes.h"
#include "drain/net_snapshot.h"
#include "drain/vm_resources.h"
#include "output/self_lines.h"

namespace vmscope {

class SampleSource {
 public:
  virtual ~SampleSource() = default;

  // VM processes as this source sees them; null when the kernel lacks the process
  // hooks (or the agent read has no process metrics): the network path runs anyway.
  virtual ProcTracker* procs() const = 0;
  // The devices to count changed (a full link dump, or link events).
  virtual void sync_devices(const Inventory& inv, Netlink& nl) = 0;
  // Whether the last sync_devices left devices to attach (it works within a time budget,
  // so that ticks go on while a cold start attaches thousands); call it again soon.
  virtual bool sync_pending() const { return false; }
  // The network counters of every counted device, now, into `out` (its storage reused
  // from tick to tick).
  virtual Status collect_net(const Inventory& inv, Netlink& nl, int64_t timestamp_ns,
                             NetSnapshot& out) = 0;
  // VM starts and exits reported since the last call.
  virtual std::vector<VmEvent> poll_events() = 0;
  // Events the engine emits besides poll_events' (tracked processes found gone).
  virtual void emitted(std::span<const VmEvent> events) = 0;
  // The network side of the self-metrics (slots), and the programs to report.
  virtual void describe(SelfMetrics& m, std::vector<int>& prog_fds) const = 0;
  // Removes every attachment (also done when the source is destroyed).
  virtual void detach_all() = 0;
  // What is read, for top's header: "own programs", "reading vmscope run (pid N)".
  virtual std::string label() const = 0;
};

enum class SourceChoice {
  kPublish,  // own programs, maps pinned for `vmscope top` (vmscope run)
  kOwn,      // own programs, shared with nobody (vmscope top --own)
  kViewer,   // the running agent's maps when there is one, else kOwn (vmscope top)
};

// net_slots: the slot capacity of its own programs (0: from the host).
Result<std::unique_ptr<SampleSource>> open_sample_source(SourceChoice choice, AttachMode mode,
                                                         uint32_t net_slots,
                                                         const VmProcessOptions& procs);

// The two implementations, for open_sample_source.
Result<std::unique_ptr<SampleSource>> open_own_source(AttachMode mode, uint32_t net_slots,
                                                      const VmProcessOptions& procs, bool publish);
std::unique_ptr<SampleSource> open_shared_source(SharedMaps maps, const VmProcessOptions& procs);

// What is counted: every VM tap and every bridge holding one (ifindex -> name).
std::map<int, std::string> counted_devices(const Inventory& inv);

// A process tracker, or none (with the reason logged once) when it cannot be had.
std::unique_ptr<ProcTracker> tracker_or_none(Result<std::unique_ptr<ProcTracker>> tracker);

}  // namespace vmscope
