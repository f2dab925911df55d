#include "drain/slot_capacity.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include <algorithm>

namespace vmscope {
namespace {

constexpr uint32_t kStep = 1024;
constexpr uint32_t kFloorMax = 8192;  // the fixed size before sizing was chosen at run time
// What the floor may cost in net_stats: 8192 slots stay within it up to 28 CPUs.
constexpr uint64_t kFloorBudgetBytes = 32ull << 20;

uint32_t round_up(uint64_t n) {
  return static_cast<uint32_t>(std::min<uint64_t>((n + kStep - 1) / kStep * kStep, kMaxSlots));
}

// Network devices in this namespace (the netlink dump behind if_nameindex).
uint32_t count_links() {
  struct if_nameindex* list = if_nameindex();
  if (!list) return 0;
  uint32_t n = 0;
  while (list[n].if_index != 0) ++n;
  if_freenameindex(list);
  return n;
}

}  // namespace

uint32_t default_slot_capacity(uint32_t links, uint32_t cpus) {
  uint64_t per_slot = uint64_t{std::max<uint32_t>(cpus, 1)} * sizeof(vs_dev_counters);
  uint64_t floor = kFloorBudgetBytes / per_slot / kStep * kStep;
  floor = std::clamp<uint64_t>(floor, kStep, kFloorMax);
  return std::max(static_cast<uint32_t>(floor), round_up(uint64_t{links} * 2));
}

SlotCapacity choose_slot_capacity(uint32_t requested, uint32_t cpus) {
  if (requested != 0) return {requested, "net_slots"};
  uint32_t links = count_links();
  uint32_t slots = default_slot_capacity(links, cpus);
  return {slots,
          fmt::format("from {} links and {} possible CPUs; net_slots to change", links, cpus)};
}

uint64_t slot_memory_bytes(uint32_t slots, uint32_t cpus) {
  return uint64_t{slots} * (uint64_t{cpus} + 1) * sizeof(vs_dev_counters);
}

Status size_slot_maps(bpf_object* obj, uint32_t slots) {
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__max_entries(map) != VS_MAX_SLOTS) continue;
    if (int err = bpf_map__set_max_entries(map, slots))
      return Error::from_errno(fmt::format("size map {} to {} slots", bpf_map__name(map), slots),
                               -err);
  }
  return {};
}

Result<uint32_t> slot_capacity_of(int map_fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0)
    return Error::from_errno("read the slot capacity of net_stats", errno);
  return info.max_entries;
}

}  // namespace vmscope
