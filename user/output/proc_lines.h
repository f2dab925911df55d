// Process measurements as line protocol, albatross-compatible where albatross has them:
//   resource_usage  utime/stime float seconds, maxflt = MAJOR faults, maxrss = rss pages
//   kinfo_mem       vsize bytes, rss/tsize/dsize/ssize pages (4 KiB), runtime µs, uptime s
//   vm_event        start/exit of a VM, usable as Grafana annotations
#pragma once

#include <string>
#include <vector>

#include "drain/vm_resources.h"

namespace vmscope {

size_t encode_resources(const std::vector<VmResources>& vms, int64_t timestamp_ns,
                        std::string& out);
void encode_vm_event(const VmEvent& ev, std::string& out);

}  // namespace vmscope
