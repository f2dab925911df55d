// Reads net_stats through a read-only mapping of the map (no syscall per tick) and sums
// the CPUs' regions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/mapping.h"
#include "common/result.h"
#include "vmscope.h"

namespace vmscope {

class NetDrain {
 public:
  explicit NetDrain(int net_stats_fd);

  // Reads slots [0, slot_limit); afterwards counters(slot, dir) holds the CPU sums.
  // Maps net_stats on first use.
  Status read(uint32_t slot_limit);
  const vs_net_counters& counters(uint32_t slot, vs_dir dir) const { return sums_[slot].dir[dir]; }

 private:
  Status map();

  int fd_;
  size_t ncpus_ = 0;
  // net_stats: ncpus_ regions of VS_MAX_SLOTS entries (bpf/net.bpf.c).
  Mapping<vs_dev_counters> regions_;
  std::vector<vs_dev_counters> sums_;  // [slot]
};

// a += b, field by field.
void add_counters(vs_net_counters& a, const vs_net_counters& b);

}  // namespace vmscope
