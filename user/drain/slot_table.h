// Which slot of net_stats counts each device. The attacher fills it as it attaches
// (vmscope run, top with its own programs); top reading a running agent fills it from
// the agent's if_slot map. The collector only reads it, so it lives here, below both.
#pragma once

#include <cstdint>
#include <string>

#include "common/flat_map.h"

namespace vmscope {

struct CountedDevice {
  std::string ifname;
  uint32_t slot = 0;  // index into net_stats / net_sums
};

// By ifindex (ordered: the collector merges it with the taps, also ordered by ifindex).
using SlotTable = FlatMap<int, CountedDevice>;

}  // namespace vmscope
