// What /metrics shows: one tick's sample, kept as an immutable snapshot that owns its
// names, rendered on demand in the Prometheus text format or OpenMetrics.
//
// The families come from the same places as the line protocol's fields: VS_NET_COUNTERS
// (vm_net, bridge), VS_SERVICE_COUNTERS (vm_service) and VS_TASK_IO_COUNTERS (vm_io) are
// expanded, so a counter added to those lists appears here with no change; the tap's own
// kernel counters (interface), the per-VM figures (resource_usage, kinfo_mem, vm_cpu) and
// the agent's own (the vmscope line) are mapped by hand, with a static_assert on the task
// list as proc_lines has. Names follow Prometheus' conventions: base units (seconds,
// bytes), _total on counters, directions from the VM's point of view as in `top`.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "discover/task_counter_support.h"
#include "drain/tick_sample.h"
#include "output/prometheus_text.h"
#include "output/self_lines.h"

namespace vmscope {

// The agent's tick durations, cumulative since start (vmscope_tick_duration_seconds).
struct TickHistogram {
  static constexpr std::array<double, 11> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1,    2.5};
  std::array<uint64_t, kBounds.size()> buckets{};  // observations <= kBounds[i]
  uint64_t count = 0;
  double sum = 0;
  void observe(double seconds);
};

// Who built this binary (vmscope_build_info), from the generated version.h.
struct BuildInfo {
  std::string_view version, revision, bpf_types_kernel;
};
BuildInfo build_info();

struct MetricsSnapshot {
  TickSample sample;  // its names are views into `names`; no events
  SelfMetrics self;
  TaskCounterSupport kept;
  TickHistogram ticks;
  std::string names;
  // vmscope_vm_start_time_seconds per entry of sample.vms, from StartTimes; empty: each
  // is the tick's time less the VM's uptime.
  std::vector<double> vm_start_s;
  // Labels every series carries (host, the global tags), as encode_const_labels writes them.
  std::string const_labels;
};

// A copy of what the tick collected that outlives the tick: the sample's names (views
// into the engine's state) are copied into the snapshot.
std::shared_ptr<MetricsSnapshot> retain_snapshot(const TickSample& sample, const SelfMetrics& self,
                                                 const TaskCounterSupport& kept,
                                                 const TickHistogram& ticks);

// VM start times that stay put from tick to tick. A tick's figure (its clock less the
// VM's uptime) moves by the few milliseconds between the two readings, which would make
// changes(vmscope_vm_start_time_seconds[...]) count every scrape; the first figure is
// kept while later ones stay within a second of it, so a change is a restart.
class StartTimes {
 public:
  // Fills s.vm_start_s; forgets the VMs that are gone.
  void settle(MetricsSnapshot& s);

 private:
  std::map<std::string, double, std::less<>> start_s_;
};

// Appends every family of the snapshot to out.
void render_metrics(const MetricsSnapshot& s, ExpositionFormat format, std::string& out);

}  // namespace vmscope
