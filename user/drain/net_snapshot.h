// One tick's view of the network: cumulative counters since vmscope attached, per VM tap
// and per bridge. Built by NetCollector, encoded by output/net_lines, shown by top.
#pragma once

#include <linux/if_link.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "discover/inventory.h"
#include "discover/links.h"
#include "drain/net_drain.h"
#include "drain/slot_table.h"

namespace vmscope {

// A device's own counters as the kernel keeps them (`ip -s link`, RTM_GETSTATS),
// cumulative since the device was created: what albatross reports as `interface`, and what
// BPF cannot see (errors, drops). Read every tick, never rebased, so they agree with the
// kernel whenever the device was created and however often vmscope restarted.
struct LinkCounters {
  uint64_t rx_packets = 0, rx_bytes = 0, rx_errors = 0, rx_dropped = 0, rx_multicast = 0;
  uint64_t tx_packets = 0, tx_bytes = 0, tx_errors = 0, tx_dropped = 0, collisions = 0;
};

// Names are views into the Inventory the sample was collected from: valid until it
// next changes (a snapshot is encoded right after collection; copy to keep it longer).
struct TapSample {
  int ifindex = 0;
  std::string_view ifname, vm, launcher, bridge;
  int pid = 0;
  int master = 0;  // ifindex of its bridge, 0 if none
  uint32_t mtu = 0;
  vs_net_counters vm_to_host{};   // the tap's ingress (its RX)
  vs_net_counters host_to_vm{};   // the tap's egress (its TX)
  vs_service_counters service{};  // how the VM's services answer (vm_service)
  LinkCounters kernel;            // the tap's own counters (RX = vm_to_host)
  bool kernel_known = false;      // false: the tap was missing from this tick's statistics dump
};

struct BridgeSample {
  int ifindex = 0;
  std::string_view name;
  uint32_t taps = 0;             // VM taps enslaved to it
  vs_net_counters vm_to_host{};  // sum over its taps
  vs_net_counters host_to_vm{};
  vs_net_counters host_rx{};  // the bridge device's own ingress: VMs -> host stack
  vs_net_counters host_tx{};  // its egress: host stack -> VMs
};

struct NetSnapshot {
  int64_t timestamp_ns = 0;
  std::vector<TapSample> taps;  // ordered by ifindex
  std::vector<BridgeSample> bridges;
};

class NetCollector {
 public:
  explicit NetCollector(const NetMapFds& maps) : drain_(maps) {}

  void program_fds(std::vector<int>& out) const { drain_.program_fds(out); }
  // Counts carried over from an earlier layout's maps (NetDrain::set_carry).
  void set_carry(const CarryTable* carry) { drain_.set_carry(carry); }
  // Open handshakes and DNS queries after the last tick's sweep (self-metrics); nullopt
  // where this collector does not sweep.
  std::optional<uint32_t> pending_entries() const { return drain_.pending_entries(); }
  // Devices net_stats can count (its slots).
  uint32_t slot_capacity() const { return drain_.capacity(); }

  // devices: the counted ones and their slots (attached by us, or by the agent we read).
  // Fills `out`, reusing its vectors: at 10,000 taps a snapshot is ~5 MB, and a fresh one
  // per tick is fresh pages (page faults) every tick. On error `out` is unspecified.
  Status collect(const Inventory& inv, const SlotTable& devices, Netlink& nl, uint32_t slot_limit,
                 int64_t timestamp_ns, NetSnapshot& out);
  // The same into a new snapshot (tests, one-off reads).
  Result<NetSnapshot> collect(const Inventory& inv, const SlotTable& devices, Netlink& nl,
                              uint32_t slot_limit, int64_t timestamp_ns);

 private:
  NetDrain drain_;
  LinkStatsList stats_;  // reused every tick
};

}  // namespace vmscope
