#include "output/net_lines.h"

#include "output/line_protocol.h"

namespace vmscope {
namespace {

// The measurements name each counter by hand (see the counter lists in bpf/vmscope.h):
// albatross' `interface` carries three of them under its own names, vm_net renames the
// rest (tcp_syns is new_connections, l4_bytes one field per bucket). A new counter stops
// the build here until it has its fields, or is decided to have none.
static_assert(VS_NET_COUNTER_WORDS == 9,
              "a new VS_NET_COUNTERS entry: encode it (or note why not), then update this count");

// The tap's own counters under albatross' `interface` names and order (schema reference).
// Linux counts no TX multicast and has no queue fields: albatross writes 0 for those.
constexpr UintKeys kInterfaceKeys{"vm_to_host_packets",
                                  "vm_to_host_errors",
                                  "vm_to_host_bytes",
                                  "vm_to_host_mcast",
                                  "vm_to_host_dropped",
                                  "host_to_vm_packets",
                                  "host_to_vm_errors",
                                  "host_to_vm_bytes",
                                  "host_to_vm_mcast",
                                  "host_to_vm_dropped",
                                  "mtu",
                                  "send_queue_length",
                                  "max_send_queue_length",
                                  "send_queue_drops",
                                  "baudrate",
                                  "collisions"};

// vm_net's fields per direction (the same counters, each key with its direction).
constexpr UintKeys kVmToHostNet{"vm_to_host_tcp_bytes",       "vm_to_host_udp_bytes",
                                "vm_to_host_icmp_bytes",      "vm_to_host_other_bytes",
                                "vm_to_host_new_connections", "vm_to_host_mcast_packets",
                                "vm_to_host_bcast_packets"};
constexpr UintKeys kHostToVmNet{"host_to_vm_tcp_bytes",       "host_to_vm_udp_bytes",
                                "host_to_vm_icmp_bytes",      "host_to_vm_other_bytes",
                                "host_to_vm_new_connections", "host_to_vm_mcast_packets",
                                "host_to_vm_bcast_packets"};

void vm_net_fields(LineWriter& w, const UintKeys<7>& keys, const vs_net_counters& c) {
  w.uints(keys, c.l4_bytes[VS_L4_TCP], c.l4_bytes[VS_L4_UDP], c.l4_bytes[VS_L4_ICMP],
          c.l4_bytes[VS_L4_OTHER], c.tcp_syns, c.mcast_packets, c.bcast_packets);
}

// Fields named as the contract's list (bpf/vmscope.h, VS_SERVICE_COUNTERS), in its order.
#define VS_SERVICE_KEY_(field) #field,
constexpr UintKeys kServiceKeys{VS_SERVICE_COUNTERS(VS_SERVICE_KEY_)};
#undef VS_SERVICE_KEY_

constexpr UintKeys kBridgeKeys{"taps",
                               "vm_to_host_bytes",
                               "vm_to_host_packets",
                               "host_to_vm_bytes",
                               "host_to_vm_packets",
                               "host_rx_bytes",
                               "host_rx_packets",
                               "host_tx_bytes",
                               "host_tx_packets"};

}  // namespace

size_t encode_net(const NetSnapshot& snap, std::string& out, ChunkPoint* chunks) {
  LineWriter w(out);
  const int64_t ts = snap.timestamp_ns;
  // One pass over the taps, all three lines of a tap together, its tag values escaped
  // once: at 10,000 taps the snapshot (~5 MB) is read once rather than three times, and
  // the names once rather than eight times. Line order within a batch means nothing to
  // InfluxDB.
  TagValue vm, bridge, ifname;
  for (const TapSample& t : snap.taps) {
    vm.set(t.vm);
    bridge.set(t.bridge);
    ifname.set(t.ifname);
    // albatross' interface line (see kInterfaceKeys): the tap's RX is vm_to_host, its TX
    // host_to_vm, cumulative since the tap was created. A tap missing from this tick's
    // statistics dump (it was just removed) gets no line rather than zeros that would
    // break derivatives.
    if (t.kernel_known) {
      const LinkCounters& k = t.kernel;
      w.begin("interface")
          .tag("vm", vm)
          .tag("bridge", bridge)
          .uints(kInterfaceKeys, k.rx_packets, k.rx_errors, k.rx_bytes, k.rx_multicast,
                 k.rx_dropped, k.tx_packets, k.tx_errors, k.tx_bytes, 0, k.tx_dropped, t.mtu, 0, 0,
                 0, 0, k.collisions)
          .end(ts);
    }
    w.begin("vm_net").tag("bridge", bridge).tag("ifname", ifname).tag("vm", vm);
    vm_net_fields(w, kVmToHostNet, t.vm_to_host);
    vm_net_fields(w, kHostToVmNet, t.host_to_vm);
    w.end(ts);
#define VS_SERVICE_VALUE_(field) , t.service.field
    w.begin("vm_service")
        .tag("vm", vm)
        .tag("bridge", bridge)
        .tag("tap", ifname)
        .uints(kServiceKeys VS_SERVICE_COUNTERS(VS_SERVICE_VALUE_))
        .end(ts);
#undef VS_SERVICE_VALUE_
    if (chunks) chunks->between(out);
  }
  for (const BridgeSample& b : snap.bridges) {
    w.begin("bridge")
        .tag("bridge", b.name)
        .uints(kBridgeKeys, b.taps, b.vm_to_host.bytes, b.vm_to_host.packets, b.host_to_vm.bytes,
               b.host_to_vm.packets, b.host_rx.bytes, b.host_rx.packets, b.host_tx.bytes,
               b.host_tx.packets)
        .end(ts);
  }
  return w.lines();
}

}  // namespace vmscope
