// VM processes from the kernel: tracks every VM process in BPF, turns exec/exit events
// into vm_event records at once, and samples CPU, faults and memory per VM each tick.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attach/proc_programs.h"
#include "common/flat_map.h"
#include "discover/vm_processes.h"
#include "drain/proc_snapshot.h"
#include "drain/vm_resources.h"

namespace vmscope {

class ProcTracker {
 public:
  static Result<std::unique_ptr<ProcTracker>> create(VmProcessOptions opts);
  // Follows the `tracked` map of the agent running in this namespace (vmscope top next
  // to vmscope run): samples what that agent tracks and names it from /proc, but writes
  // nothing and makes no events (the agent publishes its own).
  static Result<std::unique_ptr<ProcTracker>> create_reader(VmProcessOptions opts, int tracked_fd);
  struct Key {
   private:
    Key() = default;
    friend class ProcTracker;
  };
  ProcTracker(Key, VmProcessOptions opts) : opts_(std::move(opts)) {}

  int events_fd() const { return programs_->events_fd(); }
  // Handles waiting exec/exit events; returns the VM start/exit events they produced.
  std::vector<VmEvent> poll_events();
  // New naming rules (a reload): the tracked VMs are named again, and processes the new
  // rules make VMs are tracked from now (as at start, without a start event). A VM
  // process no rule names any more keeps its name until it exits.
  void set_naming(VmProcessOptions opts);
  // A tap's owner is a VM process too, named after the tap when no rule names it.
  void ensure_tracked(uint32_t tgid, const VmIdentity& vm, bool named);
  // One iterator pass: per-VM resources into `out`, its storage reused from tick to
  // tick (at 10,000 VMs a fresh vector is 2.4 MB of fresh pages per tick). Processes that
  // vanished without an exit event (exited before they were tracked) come back as events
  // in `gone`.
  Status collect(std::vector<VmEvent>& gone, std::vector<VmResources>& out);
  Result<std::vector<VmResources>> collect(std::vector<VmEvent>& gone);

  size_t tracked() const { return procs_.size(); }
  uint64_t lost_events() const { return programs_->lost_events(); }
  const ProcPrograms& programs() const { return *programs_; }

 private:
  void on_event(const vs_proc_event& ev);
  void scan_existing();
  // Reader: names the processes the agent tracks that this tracker does not know yet.
  void follow(std::span<const vs_task_sample> samples);
  void track(VmProcess p, uint64_t start_boottime_ns, bool child = false);
  // Children a new VM process forked before it was tracked (BPF saw those forks with
  // an untracked parent); later forks are tracked by BPF itself.
  void adopt_children(uint32_t tgid, int depth = 0);
  VmEvent make_event(VmEvent::Kind kind, const VmProcess& p, uint64_t when_boottime_ns) const;

  VmProcessOptions opts_;
  std::unique_ptr<ProcPrograms> programs_;
  struct Tracked {
    VmProcess proc;
    uint64_t start_boottime_ns = 0;
    bool child = false;  // forked by a VM process: part of that VM, no events of its own
  };
  // By tgid, ordered: collect() merges it with the samples each tick (a flat vector: at
  // 10,000 VMs a std::map walk is a cache miss per node).
  FlatMap<uint32_t, Tracked> procs_;
  ProcAggregator aggregator_;
  // Per collect(): VM name -> output row, open addressing in a reused table (no node
  // allocation per process and tick).
  struct VmSlot {
    std::string_view name;
    uint32_t row = UINT32_MAX;  // UINT32_MAX: free
  };
  std::vector<VmSlot> vm_slots_;
  // The slot holding vm, or the free slot where it belongs.
  VmSlot& slot_of(std::string_view vm);
  // CPU wait of a VM's child processes that exited: vm_cpu counts every thread the VM
  // had and never decreases. By VM name; dropped once no process of the VM is left.
  struct DepartedWait {
    uint64_t run_delay_ns = 0, run_count = 0;
  };
  std::map<std::string, DepartedWait, std::less<>> departed_;
  void add_departed(std::vector<VmResources>& out);
  std::vector<VmEvent> pending_;  // produced by on_event during poll()
  bool reader_ = false;
  std::map<uint32_t, uint64_t> unnamed_;  // reader: tgid -> start time of processes no rule names
};

// Clock conversions: BPF stamps with CLOCK_BOOTTIME, line protocol wants realtime.
int64_t boottime_ns();
int64_t realtime_ns();

}  // namespace vmscope
