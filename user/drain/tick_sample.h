// One tick's view, as the engine samples it and its front ends consume it: `vmscope run`
// encodes it as line protocol, `vmscope top` turns two of them into rates. Only drained
// figures, so the top model needs nothing of the engine that collected them.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "drain/net_snapshot.h"
#include "drain/vm_resources.h"

namespace vmscope {

// Views inside (names) stay valid until the engine next changes state.
struct TickSample {
  int64_t timestamp_ns = 0;        // realtime, stamped on the lines
  int64_t boottime_ns = 0;         // when it was taken: rates divide by differences of this
  std::optional<NetSnapshot> net;  // nullopt: the drain failed this tick
  std::optional<std::vector<VmResources>> vms;  // nullopt: no process metrics this tick
  std::vector<VmEvent> events;                  // VM starts/exits since the last call
};

}  // namespace vmscope
