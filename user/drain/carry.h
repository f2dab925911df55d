// Counts a slot carries over from kept maps of an earlier layout (attach/kept_state.h: a
// changed layout is migrated, not reset). The datapath writes only the per-CPU maps of
// this build; what the old maps had counted is added on top when the drain sums.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "vmscope.h"

namespace vmscope {

struct CarriedCounts {
  vs_dev_counters net{};
  vs_service_counters service{};
};

// By slot; only slots that carry anything.
using CarryTable = std::unordered_map<uint32_t, CarriedCounts>;

}  // namespace vmscope
