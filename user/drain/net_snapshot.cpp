#include "drain/net_snapshot.h"

#include <algorithm>

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
  // Attached devices, taps and kernel stats are all ordered by ifindex: one merge walk
  // over the two maps (a walk is a pointer chase per node, at 10,000 taps mostly cache
  // misses), not a lookup per tap in each. Attached devices that are not taps are their
  // bridges.
  auto tap = taps.begin();
  auto stats = stats_.begin();
  for (const auto& [ifindex, dev] : devices) {
    while (tap != taps.end() && tap->first < ifindex) ++tap;
    if (tap == taps.end() || tap->first != ifindex) {
      const LinkInfo* link = inv.link(ifindex);
      if (!link || link->kind != "bridge") continue;
      BridgeSample& b = snap.bridges.emplace_back();
      b.ifindex = ifindex;
      b.name = link->name;
      b.host_rx = drain_.counters(dev.slot, VS_DIR_INGRESS);
      b.host_tx = drain_.counters(dev.slot, VS_DIR_EGRESS);
      continue;
    }
    const TapState& state = tap->second;
    TapSample& t = snap.taps.emplace_back();
    t.ifindex = ifindex;
    t.ifname = state.link.name;
    t.vm = state.vm.name;
    t.launcher = state.named ? std::string_view(state.vm.launcher) : std::string_view();
    t.bridge = state.bridge;
    t.master = state.link.master;
    t.pid = state.pid;
    t.mtu = state.link.mtu;
    t.vm_to_host = drain_.counters(dev.slot, VS_DIR_INGRESS);
    t.host_to_vm = drain_.counters(dev.slot, VS_DIR_EGRESS);
    t.service = drain_.service(dev.slot);
    while (stats != stats_.end() && stats->ifindex < ifindex) ++stats;
    if (stats != stats_.end() && stats->ifindex == ifindex) {
      t.kernel = link_counters(stats->stats);
      t.kernel_known = true;
    }
  }
  // Bridge totals over their taps. The bridges are ordered by ifindex (as the devices):
  // a binary search when the master changes, so that a bridge per VM costs log(bridges)
  // per tap, not a scan of all of them.
  BridgeSample* bridge = nullptr;  // the last tap's: taps mostly share one
  for (const TapSample& t : snap.taps) {
    if (!bridge || bridge->ifindex != t.master) {
      auto it =
          std::lower_bound(snap.bridges.begin(), snap.bridges.end(), t.master,
                           [](const BridgeSample& b, int ifindex) { return b.ifindex < ifindex; });
      bridge = it != snap.bridges.end() && it->ifindex == t.master ? &*it : nullptr;
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
