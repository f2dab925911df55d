// Owner of the loaded network accounting object (bpf/net.bpf.c) and of its slot table:
// which device counts into which net_stats (and service_stats) slot.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "attach/layout_migration.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "drain/carry.h"
#include "vmscope.h"

struct net_bpf;

namespace vmscope {

struct KeptMaps;

class NetPrograms {
 public:
  // net_slots: the slot capacity option, 0 = from the host (drain/slot_capacity.h).
  // keep_dir: where the counter maps outlive this run (attach/kept_state.h): maps kept
  // there by a previous run are adopted, fresh ones are pinned there. Empty: per run.
  static Result<NetPrograms> load(uint32_t net_slots = 0, const std::string& keep_dir = {});
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
  // host's, not a VM's). continue_kept: a slot the previous run kept for ifindex goes on
  // with its counts (the device carried our program all along); otherwise it is zeroed.
  Result<uint32_t> assign_slot(int ifindex, bool continue_kept = false);
  // Stops counting ifindex and frees its slot (also a kept, unclaimed one).
  void release_slot(int ifindex);
  // Devices whose slots the previous run kept and that no assign_slot claimed yet.
  std::vector<int> unclaimed_kept() const;
  bool has_kept_slot(int ifindex) const { return kept_.count(ifindex) != 0; }
  // Whether the previous run's counters could not be read and were dropped (one warning).
  bool kept_state_reset() const { return kept_reset_; }
  // Whether they were of another layout and are carried over (attach/layout_migration.h).
  bool kept_state_migrated() const { return migrated_; }
  // Once per tick, before the drain reads: what the slots carry from an earlier layout's
  // maps (NetDrain::set_carry). Moves the counts a migration made final into the kept
  // carry maps. Valid until the next call.
  const CarryTable* carry_for_tick();
  // Highest slot in use + 1: how far a drain has to read.
  uint32_t slot_limit() const;
  // Slots there are (every slot-indexed map's max_entries) and slots in use.
  uint32_t capacity() const { return capacity_; }
  uint32_t slots_used() const { return static_cast<uint32_t>(slot_of_.size() + kept_.size()); }
  // Devices whose ifindex is beyond the if_slot array: entries of the if_slot_far hash.
  uint32_t far_entries() const;

 private:
  struct Deleter {
    void operator()(net_bpf* skel) const;
  };
  NetPrograms(net_bpf* skel, uint32_t capacity);
  void take_kept_slots(const std::vector<std::pair<int, uint32_t>>& slots);
  Status write_if_slot(int ifindex, uint32_t value);
  // Migrating from kept maps of another layout: the new maps count the same devices in
  // the same slots, and the old maps' counts are carried over.
  Status start_migration(KeptMaps& old);
  void copy_pending(int old_pending);
  // slot no longer carries anything (a new device gets it, or none).
  void forget_carry(uint32_t slot);
  void persist_carry(uint32_t slot);

  std::unique_ptr<net_bpf, Deleter> skel_;
  std::unordered_map<int, uint32_t> slot_of_;  // ifindex -> slot
  std::unordered_map<int, uint32_t> kept_;     // kept by the previous run, not yet claimed
  bool kept_reset_ = false;
  bool migrated_ = false;
  UniqueFd net_carry_, service_carry_;  // kept carry maps (none for a run that keeps nothing)
  CarryTable carry_;                    // their contents
  CarryTable carry_view_;               // carry_ plus a migration's live counts, per tick
  CarryTable live_;
  std::unique_ptr<LayoutMigration> migration_;
  uint64_t tick_ = 0;
  std::set<uint32_t> free_slots_;  // released slots, reused first
  uint32_t next_slot_ = 0;         // never-used slots start here
  uint32_t capacity_ = 0;
  std::vector<vs_dev_counters> zeros_;  // one slot's worth of per-CPU zeros
  std::vector<vs_service_counters> service_zeros_;
};

}  // namespace vmscope
