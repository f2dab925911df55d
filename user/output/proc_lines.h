// Process measurements as line protocol, albatross-compatible where albatross has them:
//   resource_usage  utime/stime float seconds, maxflt = MAJOR faults, maxrss = rss pages
//   kinfo_mem       vsize bytes, rss/tsize/dsize/ssize pages (4 KiB), runtime µs, uptime s
//   vm_cpu          run_delay s (runnable, waiting for a CPU), run_count (timeslices)
//   vm_io           /proc/<pid>/io's fields, summed over the VM's processes
//   vm_event        start/exit of a VM, usable as Grafana annotations; an exit carries
//                   the final figures
#pragma once

#include <string>
#include <vector>

#include "discover/task_counter_support.h"
#include "drain/vm_resources.h"
#include "output/line_protocol.h"

namespace vmscope {

// `kept`: what the kernel keeps of the counters that depend on its configuration; the
// others are left out (vm_cpu, vm_io and their exit-event fields), not written as 0.
// chunks (if any) may take out's lines between two VMs.
size_t encode_resources(const std::vector<VmResources>& vms, int64_t timestamp_ns, std::string& out,
                        const TaskCounterSupport& kept = {}, ChunkPoint* chunks = nullptr);
void encode_vm_event(const VmEvent& ev, std::string& out, const TaskCounterSupport& kept = {});

}  // namespace vmscope
