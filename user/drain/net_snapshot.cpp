#include "drain/net_snapshot.h"

#include <spdlog/spdlog.h>

namespace vmscope {
namespace {

// Deltas clamp at zero: a driver that resets its counters must not produce huge values.
uint64_t since(uint64_t now, uint64_t base) {
  return now >= base ? now - base : 0;
}

}  // namespace

void NetCollector::on_attached(int ifindex, Netlink& nl) {
  auto s = nl.link_stats(ifindex);
  base_[ifindex] = s ? *s : rtnl_link_stats64{};
  if (!s) spdlog::debug("{}", s.error().message);
}

Result<NetSnapshot> NetCollector::collect(const Inventory& inv,
                                          const std::map<int, AttachedDevice>& devices, Netlink& nl,
                                          uint32_t slot_limit, int64_t timestamp_ns) {
  if (auto st = drain_.read(slot_limit); !st) return st.error();
  if (auto st = nl.dump_stats(stats_); !st) return st.error();

  NetSnapshot snap;
  snap.timestamp_ns = timestamp_ns;
  snap.taps.reserve(inv.taps().size());
  std::map<int, BridgeSample> bridges;
  for (const auto& [ifindex, dev] : devices) {
    const LinkInfo* link = inv.link(ifindex);
    if (!link || link->kind != "bridge") continue;
    BridgeSample& b = bridges[ifindex];
    b.ifindex = ifindex;
    b.name = link->name;
    b.host_rx = drain_.counters(dev.slot, VS_DIR_INGRESS);
    b.host_tx = drain_.counters(dev.slot, VS_DIR_EGRESS);
  }
  for (const auto& [ifindex, tap] : inv.taps()) {
    auto dev = devices.find(ifindex);
    if (dev == devices.end()) continue;  // not attached (yet): nothing counted to report
    TapSample t;
    t.ifindex = ifindex;
    t.ifname = tap.link.name;
    t.vm = tap.vm.name;
    t.launcher = tap.named ? tap.vm.launcher : "";
    t.bridge = tap.bridge;
    t.pid = tap.pid;
    t.mtu = tap.link.mtu;
    t.vm_to_host = drain_.counters(dev->second.slot, VS_DIR_INGRESS);
    t.host_to_vm = drain_.counters(dev->second.slot, VS_DIR_EGRESS);
    if (const rtnl_link_stats64* s = find_stats(stats_, ifindex)) {
      const rtnl_link_stats64& now = *s;
      const rtnl_link_stats64& base = base_[ifindex];
      t.errors.rx_errors = since(now.rx_errors, base.rx_errors);
      t.errors.rx_dropped = since(now.rx_dropped, base.rx_dropped);
      t.errors.tx_errors = since(now.tx_errors, base.tx_errors);
      t.errors.tx_dropped = since(now.tx_dropped, base.tx_dropped);
      t.errors.collisions = since(now.collisions, base.collisions);
    }
    if (auto b = bridges.find(tap.link.master); b != bridges.end()) {
      b->second.taps++;
      add_counters(b->second.vm_to_host, t.vm_to_host);
      add_counters(b->second.host_to_vm, t.host_to_vm);
    }
    snap.taps.push_back(std::move(t));
  }
  for (auto& [_, b] : bridges) snap.bridges.push_back(std::move(b));
  return snap;
}

}  // namespace vmscope
