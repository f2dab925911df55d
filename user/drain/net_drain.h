// Reads net_stats (per-CPU) in one batch syscall per tick and sums the CPUs.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "vmscope.h"

namespace vmscope {

class NetDrain {
 public:
  explicit NetDrain(int net_stats_fd);

  // Reads slots [0, slot_limit); afterwards counters(slot, dir) holds the CPU sums.
  Status read(uint32_t slot_limit);
  const vs_net_counters& counters(uint32_t slot, vs_dir dir) const { return sums_[slot].dir[dir]; }

 private:
  int fd_;
  size_t ncpus_;
  std::vector<uint32_t> keys_;
  std::vector<vs_dev_counters> percpu_;  // [slot][cpu]
  std::vector<vs_dev_counters> sums_;    // [slot]
};

// a += b, field by field.
void add_counters(vs_net_counters& a, const vs_net_counters& b);

}  // namespace vmscope
