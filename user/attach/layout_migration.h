// Carries what kept maps of an earlier layout counted over into this build's counters
// (issue 9: a changed layout is migrated, not reset), with no packet lost or counted twice.
//
// The old programs go on counting into the old maps until this build's programs replace
// them on each device (link update, filter replace). So a slot's old counts are final only
// once its device was swapped and every program run that began before the swap has ended:
// one RCU grace period. Until then the drain adds the old map's live counts; after it, the
// final counts move into the kept carry maps, and the old maps are dropped once every
// slot moved (or its device went).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "attach/kept_layout.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "drain/carry.h"

namespace vmscope {

class LayoutMigration {
 public:
  // The old per-CPU net_stats and service_stats, their fields, the slots they count.
  LayoutMigration(UniqueFd old_net_stats, UniqueFd old_service_stats, KeptFieldConverter from,
                  const std::vector<uint32_t>& slots);

  // slot's device now runs this build's programs (swapped during tick).
  void claimed(uint32_t slot, uint64_t tick);
  // slot's old counts are not carried (its device went, or lost our program).
  void dropped(uint32_t slot) { waiting_.erase(slot); }

  // Once per tick, before the drain reads: the slots swapped before `tick` are final:
  // final(slot, counts) takes their old counts, and they are done. Those swapped at `tick`
  // (old programs may still be running) add their old counts so far to live.
  Status advance(uint64_t tick, const std::function<void(uint32_t, const CarriedCounts&)>& final,
                 CarryTable& live);
  bool done() const { return waiting_.empty(); }
  size_t moved() const { return moved_; }
  const KeptFieldConverter& converter() const { return from_; }

 private:
  Result<CarriedCounts> read_old(uint32_t slot);

  static constexpr uint64_t kUnclaimed = ~uint64_t{0};
  UniqueFd net_stats_, service_stats_;
  KeptFieldConverter from_;
  size_t ncpus_ = 0;
  std::map<uint32_t, uint64_t> waiting_;  // slot -> tick it was swapped in, or kUnclaimed
  std::vector<uint64_t> percpu_, sum_;
  size_t moved_ = 0;
};

}  // namespace vmscope
