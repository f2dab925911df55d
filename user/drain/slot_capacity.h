// How many devices the network counters can hold: one run-time value (the slot capacity)
// that every slot-indexed BPF map gets before its object loads, chosen once at start from
// the host (its links now, its possible CPUs) or set with the net_slots option. The
// per-CPU net_stats costs slots x possible CPUs x sizeof(vs_dev_counters) of kernel
// memory, so the default follows the CPUs as well as the links.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "vmscope.h"

struct bpf_object;

namespace vmscope {

inline constexpr uint32_t kMinSlots = VS_MIN_SLOTS;
inline constexpr uint32_t kMaxSlots = VS_MAX_SLOTS;

struct SlotCapacity {
  uint32_t slots = 0;
  std::string why;  // how it was chosen, for the start-up line
};

// The default for a host with `links` network devices now and `cpus` possible CPUs:
// twice the links (VMs come and go after start), and at least a floor that keeps the
// per-CPU counters within a fixed memory budget: 8192 slots on up to 28 CPUs, down to
// 1024 on 224 CPUs and more. Rounded up to a multiple of 1024.
uint32_t default_slot_capacity(uint32_t links, uint32_t cpus);

// requested: the net_slots option, 0 = from the host (counts this namespace's links).
SlotCapacity choose_slot_capacity(uint32_t requested, uint32_t cpus);

// Kernel memory of net_stats and net_sums for that many slots, in bytes.
uint64_t slot_memory_bytes(uint32_t slots, uint32_t cpus);

// Sets every map of obj declared with max_entries VS_MAX_SLOTS (the slot-indexed ones,
// see bpf/vmscope.h) to `slots`; before the object loads.
Status size_slot_maps(bpf_object* obj, uint32_t slots);

// The slot capacity a loaded slot-indexed map (net_stats) was created with.
Result<uint32_t> slot_capacity_of(int map_fd);

}  // namespace vmscope
