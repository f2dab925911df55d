// The network measurements keep albatross' exact schema: names, order, meanings.
#include "output/net_lines.h"

#include <gtest/gtest.h>

namespace vmscope {
namespace {

vs_net_counters counters(uint64_t bytes, uint64_t packets) {
  vs_net_counters c{};
  c.bytes = bytes;
  c.packets = packets;
  c.mcast_packets = 2;
  c.bcast_packets = 1;
  c.l4_bytes[VS_L4_TCP] = bytes / 2;
  c.l4_bytes[VS_L4_UDP] = bytes / 4;
  c.l4_bytes[VS_L4_ICMP] = 0;
  c.l4_bytes[VS_L4_OTHER] = bytes - bytes / 2 - bytes / 4;
  c.tcp_syns = 3;
  return c;
}

TEST(NetLines, InterfaceLineIsAlbatrossSchema) {
  NetSnapshot s;
  s.timestamp_ns = 1700000000000000000;
  TapSample t;
  t.ifname = "vmmtap0";
  t.vm = "web";
  t.bridge = "service";
  t.mtu = 1500;
  t.vm_to_host = counters(1000, 10);
  t.host_to_vm = counters(2000, 20);
  // The kernel's own counters, deliberately unlike the BPF ones: `interface` is the tap's.
  t.kernel = {.rx_packets = 11,
              .rx_bytes = 1054,
              .rx_errors = 1,
              .rx_dropped = 2,
              .rx_multicast = 5,
              .tx_packets = 21,
              .tx_bytes = 2054,
              .tx_errors = 3,
              .tx_dropped = 4,
              .collisions = 6};
  t.kernel_known = true;
  s.taps.push_back(t);
  std::string out;
  EXPECT_EQ(encode_net(s, out), 3u);
  const std::string want_interface =
      "interface,vm=web,bridge=service vm_to_host_packets=11i,vm_to_host_errors=1i,"
      "vm_to_host_bytes=1054i,vm_to_host_mcast=5i,vm_to_host_dropped=2i,"
      "host_to_vm_packets=21i,host_to_vm_errors=3i,host_to_vm_bytes=2054i,host_to_vm_mcast=0i,"
      "host_to_vm_dropped=4i,mtu=1500i,send_queue_length=0i,max_send_queue_length=0i,"
      "send_queue_drops=0i,baudrate=0i,collisions=6i 1700000000000000000\n";
  const std::string want_vm_net =
      "vm_net,bridge=service,ifname=vmmtap0,vm=web vm_to_host_tcp_bytes=500i,"
      "vm_to_host_udp_bytes=250i,vm_to_host_icmp_bytes=0i,vm_to_host_other_bytes=250i,"
      "vm_to_host_new_connections=3i,vm_to_host_mcast_packets=2i,vm_to_host_bcast_packets=1i,"
      "host_to_vm_tcp_bytes=1000i,host_to_vm_udp_bytes=500i,host_to_vm_icmp_bytes=0i,"
      "host_to_vm_other_bytes=500i,host_to_vm_new_connections=3i,host_to_vm_mcast_packets=2i,"
      "host_to_vm_bcast_packets=1i 1700000000000000000\n";
  EXPECT_EQ(out.substr(0, want_interface.size() + want_vm_net.size()),
            want_interface + want_vm_net);
}

// vm_service: one line per VM tap, tagged vm, bridge, tap; every field of issue 12's
// schema spelled out here (not generated from the contract's list), each with its own
// value, in the list's order.
TEST(NetLines, VmServiceLineHasIssueSchema) {
  NetSnapshot s;
  s.timestamp_ns = 42;
  TapSample t;
  t.ifname = "vmmtap0";
  t.vm = "web 1";
  t.bridge = "service";
  uint64_t v = 1;
#define VS_SET_(field) t.service.field = v++;
  VS_SERVICE_COUNTERS(VS_SET_)
#undef VS_SET_
  t.kernel_known = true;
  s.taps.push_back(t);
  std::string out;
  EXPECT_EQ(encode_net(s, out), 3u);
  const std::string want =
      "vm_service,vm=web\\ 1,bridge=service,tap=vmmtap0 tcp_syn_in=1i,tcp_accepted=2i,"
      "tcp_refused=3i,tcp_unanswered=4i,tcp_rst_out=5i,handshake_count=6i,"
      "handshake_sum_us=7i,handshake_le_100us=8i,handshake_le_1ms=9i,handshake_le_10ms=10i,"
      "handshake_le_100ms=11i,handshake_le_1s=12i,tcp_connect_out=13i,tcp_connect_ok=14i,"
      "tcp_connect_refused=15i,connect_count=16i,connect_sum_us=17i,dns_responses=18i,"
      "dns_noerror=19i,dns_nxdomain=20i,dns_servfail=21i,dns_refused=22i,dns_other=23i,"
      "dns_latency_count=24i,dns_latency_sum_us=25i,http_1xx=26i,http_2xx=27i,http_3xx=28i,"
      "http_4xx=29i,http_5xx=30i 42\n";
  const size_t at = out.find("vm_service,");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_EQ(out.substr(at), want);
}

TEST(NetLines, VmServiceWithoutBridgeOmitsTheTag) {
  NetSnapshot s;
  s.timestamp_ns = 5;
  TapSample t;
  t.ifname = "tap,0";
  t.vm = "vm=1";
  s.taps.push_back(t);
  std::string out;
  encode_net(s, out);
  EXPECT_NE(out.find("vm_service,vm=vm\\=1,tap=tap\\,0 tcp_syn_in=0i,"), std::string::npos) << out;
}

TEST(NetLines, TapWithoutBridgeOmitsTheTag) {
  NetSnapshot s;
  s.timestamp_ns = 5;
  TapSample t;
  t.ifname = "tap0";
  t.vm = "my vm,1";  // escaped, not broken
  t.kernel_known = true;
  s.taps.push_back(t);
  std::string out;
  encode_net(s, out);
  EXPECT_EQ(out.rfind("interface,vm=my\\ vm\\,1 vm_to_host_packets=0i,", 0), 0u) << out;
  EXPECT_NE(out.find("vm_net,ifname=tap0,vm=my\\ vm\\,1 "), std::string::npos) << out;
}

// A tap gone from the statistics dump (removed during the tick) gets no interface line:
// zeros would read as a counter reset. Its BPF counters still give vm_net and vm_service.
TEST(NetLines, TapWithoutKernelCountersHasNoInterfaceLine) {
  NetSnapshot s;
  TapSample t;
  t.ifname = "tap0";
  t.vm = "web";
  s.taps.push_back(t);
  std::string out;
  EXPECT_EQ(encode_net(s, out), 2u);
  EXPECT_EQ(out.rfind("vm_net,", 0), 0u) << out;
  EXPECT_EQ(out.find("interface"), std::string::npos) << out;
}

TEST(NetLines, BridgeLine) {
  NetSnapshot s;
  s.timestamp_ns = 7;
  BridgeSample b;
  b.name = "br0";
  b.taps = 2;
  b.vm_to_host = counters(10, 1);
  b.host_to_vm = counters(20, 2);
  b.host_rx = counters(30, 3);
  b.host_tx = counters(40, 4);
  s.bridges.push_back(b);
  std::string out;
  EXPECT_EQ(encode_net(s, out), 1u);
  EXPECT_EQ(out,
            "bridge,bridge=br0 taps=2i,vm_to_host_bytes=10i,vm_to_host_packets=1i,"
            "host_to_vm_bytes=20i,host_to_vm_packets=2i,host_rx_bytes=30i,host_rx_packets=3i,"
            "host_tx_bytes=40i,host_tx_packets=4i 7\n");
}

// The agent cuts a tick's lines into chunks between taps (ChunkPoint): the chunks, in
// order, are exactly the unchunked lines, and each ends at a tap's last line.
TEST(NetLines, ChunksCutBetweenTapsAddUpToTheWholeBatch) {
  NetSnapshot s;
  s.timestamp_ns = 9;
  std::vector<std::string> ifnames, vms;  // the samples' names are views: kept here
  for (int i = 0; i < 5; ++i) {
    ifnames.push_back("tap" + std::to_string(i));
    vms.push_back("vm " + std::to_string(i));  // escaped: the chunk must not cut inside a line
  }
  for (int i = 0; i < 5; ++i) {
    TapSample t;
    t.ifname = ifnames[i];
    t.vm = vms[i];
    t.bridge = "br0";
    t.kernel_known = i % 2 == 0;
    t.vm_to_host = counters(100 * i, i);
    s.taps.push_back(t);
  }
  std::string whole;
  const size_t lines = encode_net(s, whole);

  struct Cutter final : ChunkPoint {
    void between(std::string& out) override {
      if (out.size() < 1500) return;
      chunks.push_back(std::move(out));
      out.clear();
    }
    std::vector<std::string> chunks;
  } cutter;
  std::string rest;
  EXPECT_EQ(encode_net(s, rest, &cutter), lines);
  ASSERT_GE(cutter.chunks.size(), 2u) << "the test's taps must fill more than one chunk";
  std::string joined;
  for (const std::string& c : cutter.chunks) {
    EXPECT_EQ(c.back(), '\n');
    EXPECT_EQ(c.rfind("vm_service,", c.rfind('\n', c.size() - 2) + 1),
              c.rfind('\n', c.size() - 2) + 1)
        << "a chunk ends with a tap's vm_service line";
    joined += c;
  }
  joined += rest;
  EXPECT_EQ(joined, whole);
}

}  // namespace
}  // namespace vmscope
