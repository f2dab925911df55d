#include "drain/net_snapshot.h"

namespace vmscope {
namespace {

LinkCounters link_counters(const rtnl_link_stats64& s) {
  return {s.rx_packets, s.rx_bytes, s.rx_errors, s.rx_dropped, s.multicast,
          s.tx_packets, s.tx_bytes, s.tx_errors, s.tx_dropped, s.collisions};
}

}  // namespace

Result<NetSnapshot> NetCollector::collect(const Inventory& inv, const SlotTable& devices,
                                          Netlink& nl, uint32_t slot_limit, int64_t timestamp_ns) {
  NetSnapshot snap;
  if (auto st = collect(inv, devices, nl, slot_limit, timestamp_ns, snap); !st) return st.error();
  return snap;
}

Status NetCollector::collect(const Inventory& inv, const SlotTable& devices, Netlink& nl,
                             uint32_t slot_limit, int64_t timestamp_ns, NetSnapshot& snap) {
  if (auto st = drain_.read(slot_limit); !st) return st;
  if (auto st = nl.dump_stats(stats_); !st) return st;

  snap.timestamp_ns = timestamp_ns;
  snap.taps.clear();
  snap.bridges.clear();
  snap.taps.reserve(inv.taps().size());
  const auto& taps = inv.taps();
  // Taps, attached devices and kernel stats are all ordered by
  // ifindex: one merge walk instead of a lookup per tap in each.
  // Attached devices that are not taps are their bridges (few).
  {
    auto tap = taps.begin();
    for (const auto& [ifindex, dev] : devices) {
      while (tap != taps.end() && tap->first < ifindex) ++tap;
      if (tap != taps.end() && tap->first == ifindex) continue;
      const LinkInfo* link = inv.link(ifindex);
      if (!link || link->kind != "bridge") continue;
      BridgeSample& b = snap.bridges.emplace_back();
      b.ifindex = ifindex;
      b.name = link->name;
      b.host_rx = drain_.counters(dev.slot, VS_DIR_INGRESS);
      b.host_tx = drain_.counters(dev.slot, VS_DIR_EGRESS);
    }
  }
  auto dev = devices.begin();
  auto stats = stats_.begin();
  BridgeSample* bridge = nullptr;  // the last tap's: taps mostly share one
  for (const auto& [ifindex, tap] : taps) {
    while (dev != devices.end() && dev->first < ifindex) ++dev;
    if (dev == devices.end() || dev->first != ifindex) continue;  // not attached (yet)
    TapSample& t = snap.taps.emplace_back();
    t.ifindex = ifindex;
    t.ifname = tap.link.name;
    t.vm = tap.vm.name;
    t.launcher = tap.named ? std::string_view(tap.vm.launcher) : std::string_view();
    t.bridge = tap.bridge;
    t.pid = tap.pid;
    t.mtu = tap.link.mtu;
    t.vm_to_host = drain_.counters(dev->second.slot, VS_DIR_INGRESS);
    t.host_to_vm = drain_.counters(dev->second.slot, VS_DIR_EGRESS);
    t.service = drain_.service(dev->second.slot);
    while (stats != stats_.end() && stats->ifindex < ifindex) ++stats;
    if (stats != stats_.end() && stats->ifindex == ifindex) {
      t.kernel = link_counters(stats->stats);
      t.kernel_known = true;
    }
    const int master = tap.link.master;
    if (!bridge || bridge->ifindex != master) {
      bridge = nullptr;
      for (BridgeSample& b : snap.bridges)
        if (b.ifindex == master) bridge = &b;
    }
    if (bridge) {
      bridge->taps++;
      add_counters(bridge->vm_to_host, t.vm_to_host);
      add_counters(bridge->host_to_vm, t.host_to_vm);
    }
  }
  return {};
}

}  // namespace vmscope
