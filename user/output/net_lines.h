// Network measurements as line protocol:
//   interface  albatross' exact schema (one line per VM tap)
//   bridge     per bridge: totals over its VM taps and the bridge device's own traffic
//   vm_net     what albatross lacks: bytes per L4 protocol, new connections, mcast/bcast
#pragma once

#include <string>

#include "drain/net_snapshot.h"

namespace vmscope {

// Appends all lines of one snapshot to out; returns the number of lines.
size_t encode_net(const NetSnapshot& snap, std::string& out);

}  // namespace vmscope
