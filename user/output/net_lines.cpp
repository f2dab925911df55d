#include "output/net_lines.h"

#include "output/line_protocol.h"

namespace vmscope {
namespace {

void bytes_packets(LineWriter& w, const char* prefix, const vs_net_counters& c) {
  std::string k(prefix);
  w.field_uint(k + "_bytes", c.bytes).field_uint(k + "_packets", c.packets);
}

void vm_net_fields(LineWriter& w, const std::string& p, const vs_net_counters& c) {
  w.field_uint(p + "_tcp_bytes", c.l4_bytes[VS_L4_TCP])
      .field_uint(p + "_udp_bytes", c.l4_bytes[VS_L4_UDP])
      .field_uint(p + "_icmp_bytes", c.l4_bytes[VS_L4_ICMP])
      .field_uint(p + "_other_bytes", c.l4_bytes[VS_L4_OTHER])
      .field_uint(p + "_new_connections", c.tcp_syns)
      .field_uint(p + "_mcast_packets", c.mcast_packets)
      .field_uint(p + "_bcast_packets", c.bcast_packets);
}

}  // namespace

size_t encode_net(const NetSnapshot& snap, std::string& out) {
  LineWriter w(out);
  const int64_t ts = snap.timestamp_ns;
  for (const TapSample& t : snap.taps) {
    // Field order and meaning exactly as albatross writes them (schema reference): the
    // tap's RX is vm_to_host, its TX host_to_vm; queue fields do not exist on Linux.
    w.begin("interface")
        .tag("vm", t.vm)
        .tag("bridge", t.bridge)
        .field_uint("vm_to_host_packets", t.vm_to_host.packets)
        .field_uint("vm_to_host_errors", t.errors.rx_errors)
        .field_uint("vm_to_host_bytes", t.vm_to_host.bytes)
        .field_uint("vm_to_host_mcast", t.vm_to_host.mcast_packets)
        .field_uint("vm_to_host_dropped", t.errors.rx_dropped)
        .field_uint("host_to_vm_packets", t.host_to_vm.packets)
        .field_uint("host_to_vm_errors", t.errors.tx_errors)
        .field_uint("host_to_vm_bytes", t.host_to_vm.bytes)
        .field_uint("host_to_vm_mcast", t.host_to_vm.mcast_packets)
        .field_uint("host_to_vm_dropped", t.errors.tx_dropped)
        .field_uint("mtu", t.mtu)
        .field_uint("send_queue_length", 0)
        .field_uint("max_send_queue_length", 0)
        .field_uint("send_queue_drops", 0)
        .field_uint("baudrate", 0)
        .field_uint("collisions", t.errors.collisions)
        .end(ts);
  }
  for (const BridgeSample& b : snap.bridges) {
    w.begin("bridge").tag("bridge", b.name).field_uint("taps", b.taps);
    bytes_packets(w, "vm_to_host", b.vm_to_host);
    bytes_packets(w, "host_to_vm", b.host_to_vm);
    bytes_packets(w, "host_rx", b.host_rx);
    bytes_packets(w, "host_tx", b.host_tx);
    w.end(ts);
  }
  for (const TapSample& t : snap.taps) {
    w.begin("vm_net").tag("bridge", t.bridge).tag("ifname", t.ifname).tag("vm", t.vm);
    vm_net_fields(w, "vm_to_host", t.vm_to_host);
    vm_net_fields(w, "host_to_vm", t.host_to_vm);
    w.end(ts);
  }
  return w.lines();
}

}  // namespace vmscope
