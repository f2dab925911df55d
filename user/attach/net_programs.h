// Owner of the loaded network accounting object (bpf/net.bpf.c) and of its slot table:
// which device counts into which net_stats (and service_stats) slot.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "vmscope.h"

struct net_bpf;

namespace vmscope {

class NetPrograms {
 public:
  static Result<NetPrograms> load();
  NetPrograms(NetPrograms&&) noexcept;
  NetPrograms& operator=(NetPrograms&&) noexcept;
  ~NetPrograms();

  int ingress_prog_fd() const;
  int egress_prog_fd() const;
  // Appends the fd of every program of net.bpf.o, for run-time statistics.
  void program_fds(std::vector<int>& out) const;
  int net_stats_fd() const;
  int if_slot_fd() const;
  int if_slot_far_fd() const;
  // Service health (bpf/service.h): per-slot counters, the VM-tap flag per slot and the
  // table of open handshakes and DNS queries.
  int service_stats_fd() const;
  int service_slots_fd() const;
  int service_pending_fd() const;

  // Gives ifindex a zeroed slot and points if_slot at it; the same slot if it has one.
  // The slot counts service health unless the device is a bridge (its traffic is the
  // host's, not a VM's).
  Result<uint32_t> assign_slot(int ifindex);
  // Stops counting ifindex and frees its slot.
  void release_slot(int ifindex);
  // Highest slot in use + 1: how far a drain has to read.
  uint32_t slot_limit() const;
  // Devices whose ifindex is beyond the if_slot array: entries of the if_slot_far hash.
  uint32_t far_entries() const;

 private:
  struct Deleter {
    void operator()(net_bpf* skel) const;
  };
  explicit NetPrograms(net_bpf* skel);
  Status write_if_slot(int ifindex, uint32_t value);

  std::unique_ptr<net_bpf, Deleter> skel_;
  std::unordered_map<int, uint32_t> slot_of_;  // ifindex -> slot
  std::vector<uint32_t> free_slots_;           // released slots, reused first
  uint32_t next_slot_ = 0;                     // never-used slots start here
  std::vector<vs_dev_counters> zeros_;         // one slot's worth of per-CPU zeros
  std::vector<vs_service_counters> service_zeros_;
};

}  // namespace vmscope
