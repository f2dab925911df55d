#include "drain/net_drain.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "drain/contract_check.h"

namespace vmscope {

NetDrain::NetDrain(int net_stats_fd)
    : fd_(net_stats_fd), ncpus_(static_cast<size_t>(libbpf_num_possible_cpus())) {}

void add_counters(vs_net_counters& a, const vs_net_counters& b) {
  a.bytes += b.bytes;
  a.packets += b.packets;
  a.mcast_packets += b.mcast_packets;
  a.bcast_packets += b.bcast_packets;
  for (int i = 0; i < VS_L4_COUNT; ++i) a.l4_bytes[i] += b.l4_bytes[i];
  a.tcp_syns += b.tcp_syns;
}

Status NetDrain::read(uint32_t slot_limit) {
  uint32_t entries = slot_limit;
  keys_.resize(entries);
  percpu_.resize(static_cast<size_t>(entries) * ncpus_);
  sums_.assign(entries, vs_dev_counters{});
  uint32_t done = 0;
  uint32_t next = 0;
  while (done < entries) {
    uint32_t count = entries - done;
    DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err =
        bpf_map_lookup_batch(fd_, done == 0 ? nullptr : &next, &next, keys_.data() + done,
                             percpu_.data() + static_cast<size_t>(done) * ncpus_, &count, &opts);
    if (err && errno != ENOENT) return Error::from_errno("batch lookup of net_stats", errno);
    done += count;
    if (err || count == 0) break;  // ENOENT: reached the end of the map
  }
  for (uint32_t i = 0; i < done; ++i) {
    if (keys_[i] >= entries) continue;
    const vs_dev_counters* cpu = percpu_.data() + static_cast<size_t>(i) * ncpus_;
    vs_dev_counters& sum = sums_[keys_[i]];
    for (size_t c = 0; c < ncpus_; ++c)
      for (int d = 0; d < VS_DIR_COUNT; ++d) add_counters(sum.dir[d], cpu[c].dir[d]);
  }
  return {};
}

}  // namespace vmscope
