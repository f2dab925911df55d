// Network measurements as line protocol:
//   interface  albatross' exact schema (one line per VM tap)
//   bridge     per bridge: totals over its VM taps and the bridge device's own traffic
//   vm_net     what albatross lacks: bytes per L4 protocol, new connections, mcast/bcast
//   vm_service how the VM's services answer, seen on its tap (issue 12): handshakes,
//              refusals, DNS RCODEs and latency, HTTP status classes
#pragma once

#include <string>

#include "drain/net_snapshot.h"
#include "output/line_protocol.h"

namespace vmscope {

// Appends all lines of one snapshot to out; returns the number of lines. chunks (if
// any) may take out's lines between two taps.
size_t encode_net(const NetSnapshot& snap, std::string& out, ChunkPoint* chunks = nullptr);

}  // namespace vmscope
