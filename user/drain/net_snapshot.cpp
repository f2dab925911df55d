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

Result<NetSnapshot> NetCollector::collect(const Inventory& inv, const SlotTable& devices,
                                          Netlink& nl, uint32_t slot_limit, int64_t timestamp_ns) {
  if (auto st = drain_.read(slot_limit); !st) return st.error();
  if (auto st = nl.dump_stats(stats_); !st) return st.error();

  NetSnapshot snap;
  snap.timestamp_ns = timestamp_ns;
  snap.taps.reserve(inv.taps().size());
  const auto& taps = inv.taps();
  // Taps, attached devices, kernel stats and their zero points are all ordered by
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
  auto base = base_.begin();
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
      while (base != base_.end() && base->first < ifindex) ++base;
      static const rtnl_link_stats64 kZero{};
      const rtnl_link_stats64& now = stats->stats;
      const rtnl_link_stats64& zero =
          base != base_.end() && base->first == ifindex ? base->second : kZero;
      t.errors.rx_errors = since(now.rx_errors, zero.rx_errors);
      t.errors.rx_dropped = since(now.rx_dropped, zero.rx_dropped);
      t.errors.tx_errors = since(now.tx_errors, zero.tx_errors);
      t.errors.tx_dropped = since(now.tx_dropped, zero.tx_dropped);
      t.errors.collisions = since(now.collisions, zero.collisions);
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
  return snap;
}

}  // namespace vmscope
