#include "attach/net_programs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "attach/kept_state.h"
#include "common/bpf_programs.h"
#include "common/unique_fd.h"
#include "drain/counter_sums.h"
#include "drain/cpu_limit.h"
#include "drain/slot_capacity.h"
#include "net.skel.h"

namespace vmscope {
namespace {

// Whether ifindex (in this thread's network namespace) is a Linux bridge: its ethtool
// driver is "bridge". The devices vmscope counts are VM taps and their bridges, so
// everything else is a tap (also when ethtool cannot tell, e.g. the device just went).
bool is_bridge(int ifindex) {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  if (!sock.valid() || !if_indextoname(static_cast<unsigned>(ifindex), ifr.ifr_name)) return false;
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  if (ioctl(sock.get(), SIOCETHTOOL, &ifr) != 0) return false;
  return std::string_view(info.driver) == "bridge";
}

}  // namespace

void NetPrograms::Deleter::operator()(net_bpf* skel) const {
  net_bpf__destroy(skel);
}

NetPrograms::NetPrograms(net_bpf* skel, uint32_t capacity) : skel_(skel), capacity_(capacity) {
  zeros_.resize(static_cast<size_t>(libbpf_num_possible_cpus()));
  service_zeros_.resize(zeros_.size());
}
NetPrograms::NetPrograms(NetPrograms&&) noexcept = default;
NetPrograms& NetPrograms::operator=(NetPrograms&&) noexcept = default;
NetPrograms::~NetPrograms() = default;

Result<NetPrograms> NetPrograms::load(uint32_t net_slots, const std::string& keep_dir) {
  // The drain sums net_stats over the CPUs up to VS_MAX_CPUS: refuse a larger host here,
  // at start, rather than at the first drain.
  auto cpus = possible_cpus();
  if (!cpus) return cpus.error().context("load BPF network programs");
  std::unique_ptr<net_bpf, Deleter> skel(net_bpf__open());
  if (!skel) return Error::from_errno("open BPF network programs (net.bpf.o)", errno);
  // One capacity for every slot-indexed map (those declared with VS_MAX_SLOTS entries).
  SlotCapacity cap = choose_slot_capacity(net_slots, *cpus);
  KeptMaps kept;
  if (!keep_dir.empty()) kept = open_kept_maps(keep_dir);
  if (kept.adopted || kept.migrate) {
    if (net_slots != 0 && net_slots != kept.slots)
      spdlog::warn(
          "net_slots = {} applies after `vmscope cleanup`: the counters kept in {} have {} slots",
          net_slots, keep_dir, kept.slots);
    cap = SlotCapacity{kept.slots, "kept from the previous run"};
  }
  if (auto st = size_slot_maps(skel->obj, cap.slots); !st) return st.error();
  if (kept.adopted) {
    if (auto st = reuse_kept_maps(skel->obj, kept); !st)
      return st.error().context(
          "load BPF network programs against the kept maps (`vmscope "
          "cleanup` drops them)");
  }
  if (net_bpf__load(skel.get()))
    return Error::from_errno("load BPF network programs (net.bpf.o)", errno);
  spdlog::info("network counters for {} devices ({}): {:.1f} MiB of kernel memory", cap.slots,
               cap.why, static_cast<double>(slot_memory_bytes(cap.slots, *cpus)) / (1 << 20));
  NetPrograms programs(skel.release(), cap.slots);
  programs.kept_reset_ = kept.reset;
  if (keep_dir.empty()) return programs;  // a run that keeps nothing carries nothing either

  // The carry maps: adopted with the counter maps, else fresh (and pinned with them).
  const bool adopt_carry = kept.adopted && kept.net_carry.valid();
  if (adopt_carry) {
    programs.net_carry_ = std::move(kept.net_carry);
    programs.service_carry_ = std::move(kept.service_carry);
    auto carry =
        read_carry(programs.net_carry_.get(), programs.service_carry_.get(), this_layout());
    if (!carry) return carry.error().context("continue the kept counters");
    programs.carry_ = std::move(*carry);
  } else {
    auto carry = create_carry_maps(cap.slots);
    if (!carry) return carry.error();
    programs.net_carry_ = std::move(carry->first);
    programs.service_carry_ = std::move(carry->second);
    if (auto st = pin_kept_maps(programs.skel_->obj, programs.net_carry_.get(),
                                programs.service_carry_.get(), keep_dir, cap.slots);
        !st)
      spdlog::warn("network counters not kept for the next run: {}", st.error().message);
  }
  if (kept.adopted) {
    auto slots = read_kept_slots(programs.if_slot_fd(), programs.if_slot_far_fd());
    if (!slots) return slots.error();
    programs.take_kept_slots(*slots);
    spdlog::info("continuing the counters of {} devices kept by the previous run", slots->size());
  } else if (kept.migrate) {
    if (auto st = programs.start_migration(kept); !st) {
      spdlog::warn(
          "network counters kept by the previous vmscope run ({}) cannot be carried over: {}; "
          "vm_net and bridge counters restart from zero",
          keep_dir, st.error().message);
      programs.kept_reset_ = true;
    }
  }
  return programs;
}

Status NetPrograms::start_migration(KeptMaps& old) {
  // Everything that can fail first: on failure nothing has changed (the caller resets).
  auto from = KeptFieldConverter::from(old.old_fields);
  if (!from) return from.error();
  auto slots = read_kept_slots(old.fd("if_slot"), old.fd("if_slot_far"));
  if (!slots) return slots.error();
  CarryTable carried;  // what the old build had itself carried over, in this build's structs
  if (old.net_carry.valid()) {
    auto c = read_carry(old.net_carry.get(), old.service_carry.get(), *from);
    if (!c) return c.error();
    carried = std::move(*c);
  }
  UniqueFd old_net(dup(old.fd("net_stats"))), old_service(dup(old.fd("service_stats")));
  if (!old_net.valid() || !old_service.valid())
    return Error::from_errno("hold the previous layout's counter maps", errno);

  for (const std::string& name : from->dropped())
    spdlog::warn("the counter {} of the previous vmscope build is not in this one: dropped", name);
  // Every slot the old maps count goes on in the same slot of the new ones.
  std::vector<std::pair<int, uint32_t>> moving;
  std::vector<uint32_t> old_slots;
  for (const auto& [ifindex, slot] : *slots) {
    if (slot >= capacity_ || !write_if_slot(ifindex, slot + 1)) continue;
    uint32_t vm_tap = 0;
    if (bpf_map_lookup_elem(old.fd("service_slots"), &slot, &vm_tap) == 0)
      (void)bpf_map_update_elem(service_slots_fd(), &slot, &vm_tap, BPF_ANY);
    moving.emplace_back(ifindex, slot);
    old_slots.push_back(slot);
    if (auto c = carried.find(slot); c != carried.end()) {
      carry_[slot] = c->second;
      persist_carry(slot);
    }
  }
  take_kept_slots(moving);
  copy_pending(old.fd("service_pending"));
  migration_ = std::make_unique<LayoutMigration>(std::move(old_net), std::move(old_service),
                                                 std::move(*from), old_slots);
  migrated_ = true;
  spdlog::info(
      "the previous vmscope run kept network counters of another layout: carrying the counts of "
      "{} devices over",
      old_slots.size());
  return {};
}

void NetPrograms::copy_pending(int old_pending) {
  // Open handshakes and DNS queries, where their keys and values did not change: their
  // answers then match as if nothing happened.
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(old_pending, &info, &len) != 0 ||
      info.key_size != sizeof(vs_pending_key) || info.value_size != sizeof(vs_pending))
    return;
  vs_pending_key key{}, prev{};
  vs_pending value{};
  bool first = true;
  while (bpf_map_get_next_key(old_pending, first ? nullptr : &prev, &key) == 0) {
    if (bpf_map_lookup_elem(old_pending, &key, &value) == 0)
      (void)bpf_map_update_elem(service_pending_fd(), &key, &value, BPF_NOEXIST);
    prev = key;
    first = false;
  }
}

void NetPrograms::persist_carry(uint32_t slot) {
  auto it = carry_.find(slot);
  if (it == carry_.end() || !net_carry_.valid()) return;
  if (bpf_map_update_elem(net_carry_.get(), &slot, &it->second.net, BPF_ANY) ||
      bpf_map_update_elem(service_carry_.get(), &slot, &it->second.service, BPF_ANY))
    spdlog::warn("keep the carried counts of slot {}: {} (lost if vmscope restarts)", slot,
                 strerror(errno));
}

void NetPrograms::forget_carry(uint32_t slot) {
  if (migration_) migration_->dropped(slot);
  if (carry_.erase(slot) == 0 || !net_carry_.valid()) return;
  (void)bpf_map_delete_elem(net_carry_.get(), &slot);
  (void)bpf_map_delete_elem(service_carry_.get(), &slot);
}

const CarryTable* NetPrograms::carry_for_tick() {
  const uint64_t tick = tick_++;
  if (!migration_) return &carry_;
  auto st = migration_->advance(
      tick,
      [&](uint32_t slot, const CarriedCounts& old) {
        CarriedCounts& c = carry_[slot];
        add_counters(c.net, old.net);
        add_counters(c.service, old.service);
        persist_carry(slot);
      },
      live_);
  if (!st) spdlog::warn("{}", st.error().message);
  if (migration_->done()) {
    spdlog::info("carried the counts of {} devices over from the previous layout's maps",
                 migration_->moved());
    migration_.reset();
    return &carry_;
  }
  carry_view_ = carry_;
  for (const auto& [slot, old] : live_) {
    CarriedCounts& c = carry_view_[slot];
    add_counters(c.net, old.net);
    add_counters(c.service, old.service);
  }
  return &carry_view_;
}

void NetPrograms::take_kept_slots(const std::vector<std::pair<int, uint32_t>>& slots) {
  for (const auto& [ifindex, slot] : slots) {
    if (slot >= capacity_) {  // not ours to trust: forget it
      (void)write_if_slot(ifindex, 0);
      continue;
    }
    kept_[ifindex] = slot;
    next_slot_ = std::max(next_slot_, slot + 1);
  }
  std::vector<bool> used(next_slot_, false);
  for (const auto& [_, slot] : kept_) used[slot] = true;
  for (uint32_t s = 0; s < next_slot_; ++s)
    if (!used[s]) free_slots_.insert(s);
}

std::vector<int> NetPrograms::unclaimed_kept() const {
  std::vector<int> out;
  for (const auto& [ifindex, _] : kept_) out.push_back(ifindex);
  return out;
}

int NetPrograms::ingress_prog_fd() const {
  return bpf_program__fd(skel_->progs.vs_tc_ingress);
}
int NetPrograms::egress_prog_fd() const {
  return bpf_program__fd(skel_->progs.vs_tc_egress);
}
void NetPrograms::program_fds(std::vector<int>& out) const {
  append_program_fds(skel_->obj, out);
}
int NetPrograms::net_stats_fd() const {
  return bpf_map__fd(skel_->maps.net_stats);
}

int NetPrograms::service_stats_fd() const {
  return bpf_map__fd(skel_->maps.service_stats);
}
int NetPrograms::service_slots_fd() const {
  return bpf_map__fd(skel_->maps.service_slots);
}
int NetPrograms::service_pending_fd() const {
  return bpf_map__fd(skel_->maps.service_pending);
}

int NetPrograms::if_slot_fd() const {
  return bpf_map__fd(skel_->maps.if_slot);
}
int NetPrograms::if_slot_far_fd() const {
  return bpf_map__fd(skel_->maps.if_slot_far);
}

Status NetPrograms::write_if_slot(int ifindex, uint32_t value) {
  auto key = static_cast<uint32_t>(ifindex);
  int err;
  if (key < VS_IFINDEX_DIRECT_MAX) {
    err = bpf_map_update_elem(if_slot_fd(), &key, &value, BPF_ANY);
  } else if (value == 0) {
    err = bpf_map_delete_elem(if_slot_far_fd(), &key);
    if (err && errno == ENOENT) err = 0;
  } else {
    err = bpf_map_update_elem(if_slot_far_fd(), &key, &value, BPF_ANY);
  }
  if (err) return Error::from_errno(fmt::format("update if_slot for ifindex {}", ifindex), errno);
  return {};
}

Result<uint32_t> NetPrograms::assign_slot(int ifindex, bool continue_kept) {
  if (auto it = slot_of_.find(ifindex); it != slot_of_.end()) return it->second;
  uint32_t slot;
  if (auto kept = kept_.find(ifindex); kept != kept_.end()) {
    slot = kept->second;
    kept_.erase(kept);
    if (continue_kept) {
      slot_of_[ifindex] = slot;
      if (migration_) migration_->claimed(slot, tick_);
      return slot;
    }
  } else if (!free_slots_.empty()) {
    slot = *free_slots_.begin();  // the lowest: keeps the drain range short
    free_slots_.erase(free_slots_.begin());
  } else if (next_slot_ < capacity_) {
    slot = next_slot_++;
  } else {
    return Error::msg(
        fmt::format("assign counter slot to ifindex {}: all {} slots in use", ifindex, capacity_));
  }
  // Zero before publishing: the previous owner's counts must not leak into the new device.
  forget_carry(slot);
  if (bpf_map_update_elem(net_stats_fd(), &slot, zeros_.data(), BPF_ANY)) {
    free_slots_.insert(slot);
    return Error::from_errno(fmt::format("zero net_stats slot {}", slot), errno);
  }
  uint32_t vm_tap = is_bridge(ifindex) ? 0 : 1;
  if (bpf_map_update_elem(service_stats_fd(), &slot, service_zeros_.data(), BPF_ANY) ||
      bpf_map_update_elem(service_slots_fd(), &slot, &vm_tap, BPF_ANY)) {
    free_slots_.insert(slot);
    return Error::from_errno(fmt::format("zero service_stats slot {}", slot), errno);
  }
  if (auto st = write_if_slot(ifindex, slot + 1); !st) {
    free_slots_.insert(slot);
    return st.error();
  }
  slot_of_[ifindex] = slot;
  return slot;
}

void NetPrograms::release_slot(int ifindex) {
  if (auto kept = kept_.find(ifindex); kept != kept_.end()) {
    slot_of_.emplace(ifindex, kept->second);
    kept_.erase(kept);
  }
  auto it = slot_of_.find(ifindex);
  if (it == slot_of_.end()) return;
  (void)write_if_slot(ifindex, 0);  // the device may be gone already; nothing to undo then
  forget_carry(it->second);
  free_slots_.insert(it->second);
  slot_of_.erase(it);
  // Shrink the drain range when the top slots are free (ordered: no sort per release,
  // which cost seconds when 10,000 devices go).
  while (!free_slots_.empty() && *free_slots_.rbegin() + 1 == next_slot_) {
    free_slots_.erase(std::prev(free_slots_.end()));
    --next_slot_;
  }
}

uint32_t NetPrograms::far_entries() const {
  uint32_t n = 0;
  for (const auto& [ifindex, _] : slot_of_)
    if (static_cast<uint32_t>(ifindex) >= VS_IFINDEX_DIRECT_MAX) ++n;
  for (const auto& [ifindex, _] : kept_)
    if (static_cast<uint32_t>(ifindex) >= VS_IFINDEX_DIRECT_MAX) ++n;
  return n;
}

uint32_t NetPrograms::slot_limit() const {
  return next_slot_;
}

}  // namespace vmscope
