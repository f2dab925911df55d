#include "drain/net_drain.h"

#include <bpf/bpf.h>

#include <cstring>

#include "drain/contract_check.h"

namespace vmscope {

NetDrain::NetDrain(int net_stats_fd) : fd_(net_stats_fd) {}

void add_counters(vs_net_counters& a, const vs_net_counters& b) {
  a.bytes += b.bytes;
  a.packets += b.packets;
  a.mcast_packets += b.mcast_packets;
  a.bcast_packets += b.bcast_packets;
  for (int i = 0; i < VS_L4_COUNT; ++i) a.l4_bytes[i] += b.l4_bytes[i];
  a.tcp_syns += b.tcp_syns;
}

Status NetDrain::map() {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd_, &info, &len))
    return Error::from_errno("read net_stats map info", errno);
  if (info.value_size != sizeof(vs_dev_counters) || info.max_entries % VS_MAX_SLOTS != 0 ||
      info.max_entries == 0)
    return Error::msg(fmt::format(
        "map net_stats: unexpected layout (value size {}, {} entries; want {} per {} slots)",
        info.value_size, info.max_entries, sizeof(vs_dev_counters), VS_MAX_SLOTS));
  auto mapping = map_readonly<vs_dev_counters>(fd_, info.max_entries, "net_stats");
  if (!mapping) return mapping.error();
  regions_ = std::move(*mapping);
  ncpus_ = info.max_entries / VS_MAX_SLOTS;
  return {};
}

Status NetDrain::read(uint32_t slot_limit) {
  if (!regions_)
    if (auto st = map(); !st) return st;
  if (slot_limit > VS_MAX_SLOTS) slot_limit = VS_MAX_SLOTS;
  sums_.resize(slot_limit);
  if (slot_limit == 0) return {};
  // CPU by CPU: each region is read front to back.
  std::memcpy(static_cast<void*>(sums_.data()), regions_.get(),
              slot_limit * sizeof(vs_dev_counters));
  for (size_t cpu = 1; cpu < ncpus_; ++cpu) {
    const vs_dev_counters* region = regions_.get() + cpu * VS_MAX_SLOTS;
    for (uint32_t slot = 0; slot < slot_limit; ++slot)
      for (int d = 0; d < VS_DIR_COUNT; ++d) add_counters(sums_[slot].dir[d], region[slot].dir[d]);
  }
  return {};
}

}  // namespace vmscope
