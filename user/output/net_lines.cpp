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

// Field keys per direction, spelled out: building them per line cost an allocation each.
struct DirKeys {
  Key bytes, packets, tcp, udp, icmp, other, conns, mcast, bcast;
};
constexpr DirKeys kVmToHost{
    "vm_to_host_bytes",           "vm_to_host_packets",       "vm_to_host_tcp_bytes",
    "vm_to_host_udp_bytes",       "vm_to_host_icmp_bytes",    "vm_to_host_other_bytes",
    "vm_to_host_new_connections", "vm_to_host_mcast_packets", "vm_to_host_bcast_packets"};
constexpr DirKeys kHostToVm{
    "host_to_vm_bytes",           "host_to_vm_packets",       "host_to_vm_tcp_bytes",
    "host_to_vm_udp_bytes",       "host_to_vm_icmp_bytes",    "host_to_vm_other_bytes",
    "host_to_vm_new_connections", "host_to_vm_mcast_packets", "host_to_vm_bcast_packets"};

void bytes_packets(LineWriter& w, Key bytes_key, Key packets_key, const vs_net_counters& c) {
  w.field_uint(bytes_key, c.bytes).field_uint(packets_key, c.packets);
}

void vm_net_fields(LineWriter& w, const DirKeys& k, const vs_net_counters& c) {
  w.field_uint(k.tcp, c.l4_bytes[VS_L4_TCP])
      .field_uint(k.udp, c.l4_bytes[VS_L4_UDP])
      .field_uint(k.icmp, c.l4_bytes[VS_L4_ICMP])
      .field_uint(k.other, c.l4_bytes[VS_L4_OTHER])
      .field_uint(k.conns, c.tcp_syns)
      .field_uint(k.mcast, c.mcast_packets)
      .field_uint(k.bcast, c.bcast_packets);
}

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
    // The tap's own counters, as albatross writes them on Linux (schema reference): field
    // order and names exactly, the tap's RX is vm_to_host, its TX host_to_vm, cumulative
    // since the tap was created. Linux counts no TX multicast and has no queue fields:
    // albatross writes 0 for those. A tap missing from this tick's statistics dump (it
    // was just removed) gets no line rather than zeros that would break derivatives.
    if (t.kernel_known) {
      const LinkCounters& k = t.kernel;
      w.begin("interface")
          .tag("vm", vm)
          .tag("bridge", bridge)
          .field_uint("vm_to_host_packets", k.rx_packets)
          .field_uint("vm_to_host_errors", k.rx_errors)
          .field_uint("vm_to_host_bytes", k.rx_bytes)
          .field_uint("vm_to_host_mcast", k.rx_multicast)
          .field_uint("vm_to_host_dropped", k.rx_dropped)
          .field_uint("host_to_vm_packets", k.tx_packets)
          .field_uint("host_to_vm_errors", k.tx_errors)
          .field_uint("host_to_vm_bytes", k.tx_bytes)
          .fields(Fields::literal("host_to_vm_mcast=0i"))
          .field_uint("host_to_vm_dropped", k.tx_dropped)
          .field_uint("mtu", t.mtu)
          .fields(Fields::literal(
              "send_queue_length=0i,max_send_queue_length=0i,send_queue_drops=0i,baudrate=0i"))
          .field_uint("collisions", k.collisions)
          .end(ts);
    }
    w.begin("vm_net").tag("bridge", bridge).tag("ifname", ifname).tag("vm", vm);
    vm_net_fields(w, kVmToHost, t.vm_to_host);
    vm_net_fields(w, kHostToVm, t.host_to_vm);
    w.end(ts);
    // Fields named as the contract's list (bpf/vmscope.h, VS_SERVICE_COUNTERS), in its order.
    w.begin("vm_service").tag("vm", vm).tag("bridge", bridge).tag("tap", ifname);
#define VS_SERVICE_FIELD_(field) w.field_uint(#field, t.service.field);
    VS_SERVICE_COUNTERS(VS_SERVICE_FIELD_)
#undef VS_SERVICE_FIELD_
    w.end(ts);
    if (chunks) chunks->between(out);
  }
  for (const BridgeSample& b : snap.bridges) {
    w.begin("bridge").tag("bridge", b.name).field_uint("taps", b.taps);
    bytes_packets(w, kVmToHost.bytes, kVmToHost.packets, b.vm_to_host);
    bytes_packets(w, kHostToVm.bytes, kHostToVm.packets, b.host_to_vm);
    bytes_packets(w, "host_rx_bytes", "host_rx_packets", b.host_rx);
    bytes_packets(w, "host_tx_bytes", "host_tx_packets", b.host_tx);
    w.end(ts);
  }
  return w.lines();
}

}  // namespace vmscope
