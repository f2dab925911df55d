// Reads net_stats and service_stats (per-CPU) once per tick and sums the CPUs: in the
// kernel by one run of bpf/net_sum.bpf.c into mapped arrays (kernel 5.19+), else by batch
// lookups that copy every CPU's value out. The agent's drain also sweeps service_pending
// (unanswered handshakes, expired DNS queries) each tick, before summing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/mapping.h"
#include "common/result.h"
#include "drain/carry.h"
#include "drain/counter_sums.h"
#include "vmscope.h"

struct net_sum_bpf;

namespace vmscope {

// The maps a drain reads (net.bpf.o's, or the pins of the agent that `vmscope top` reads).
struct NetMapFds {
  int net_stats = -1;
  int service_stats = -1;
  // -1: do not sweep (top: the agent sweeps its own table).
  int service_pending = -1;
  // Age at which an open handshake counts as unanswered (tests shorten it).
  uint64_t sweep_age_ns = VS_SERVICE_UNANSWERED_NS;
};

class NetDrain {
 public:
  explicit NetDrain(const NetMapFds& maps);
  ~NetDrain();
  NetDrain(NetDrain&&) noexcept;
  NetDrain& operator=(NetDrain&&) noexcept;

  // Counts to add to the kernel's, by slot (nullptr: none); the table must outlive the
  // drain's reads and is read by each read().
  void set_carry(const CarryTable* carry) { carry_ = carry; }
  // Reads slots [0, slot_limit); afterwards counters(slot, dir) holds the CPU sums (plus
  // the slot's carry).
  Status read(uint32_t slot_limit);
  const vs_net_counters& counters(uint32_t slot, vs_dir dir) const {
    return carried(slot) ? carried_[carried_at_[slot] - 1].net.dir[dir] : sums_[slot].dir[dir];
  }
  const vs_service_counters& service(uint32_t slot) const {
    return carried(slot) ? carried_[carried_at_[slot] - 1].service : service_sums_[slot];
  }
  // Entries the last sweep left in service_pending; nullopt where nothing sweeps.
  std::optional<uint32_t> pending_entries() const;
  // Appends the summing program's fd once it is loaded (first read()), for run-time
  // statistics.
  void program_fds(std::vector<int>& out) const;
  // Slots of net_stats (its max_entries).
  uint32_t capacity() const { return capacity_; }
  // Whether the CPUs are summed in the kernel (net_sum.bpf.o loaded), once read() ran.
  bool sums_in_kernel() const { return summer_ != nullptr; }

 private:
  struct Deleter {
    void operator()(net_sum_bpf* s) const;
  };
  // The in-kernel summing program; false (and the batch lookup from then on) if it
  // cannot be loaded.
  bool load_summer();
  Status read_summed(uint32_t slot_limit);
  Status read_batch(uint32_t slot_limit);
  void add_carry(uint32_t slot_limit);
  bool carried(uint32_t slot) const { return slot < carried_at_.size() && carried_at_[slot] != 0; }

  NetMapFds maps_;
  size_t ncpus_ = 0;
  std::optional<Error> cpu_error_;  // too many possible CPUs, or net_stats unreadable
  uint32_t capacity_ = 0;           // net_stats' slots
  bool tried_summer_ = false;
  std::unique_ptr<net_sum_bpf, Deleter> summer_;
  Mapping<vs_dev_counters> sums_map_;         // net_sums, the first mapped_ slots
  Mapping<vs_service_counters> service_map_;  // service_sums, as many
  uint32_t mapped_ = 0;
  const vs_dev_counters* sums_ = nullptr;              // into sums_map_ or batch_sums_
  const vs_service_counters* service_sums_ = nullptr;  // into service_map_ or batch_service_
  std::vector<uint32_t> keys_;
  std::vector<vs_dev_counters> percpu_;      // [slot][cpu]
  std::vector<vs_dev_counters> batch_sums_;  // [slot]
  std::vector<vs_service_counters> percpu_service_;
  std::vector<vs_service_counters> batch_service_;
  const CarryTable* carry_ = nullptr;
  std::vector<CarriedCounts> carried_;  // sums plus carry of the carried slots
  std::vector<uint32_t> carried_at_;    // [slot]: index + 1 into carried_, 0 = none
};

}  // namespace vmscope
