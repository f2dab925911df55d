// Root test: what bpf/net.bpf.c counts for each kind of frame. The real vs_tc_ingress and
// vs_tc_egress, loaded as the agent loads them (NetPrograms) with a counter slot for
// loopback, run once per table row through BPF_PROG_TEST_RUN; no device, namespace or
// traffic is involved. The skb of a tc test run is on the ctx_in ifindex (1, lo: it
// exists in every namespace) and skb->len is the frame's length.
//
// Each row is one frame and what the contract (bpf/vmscope.h, README "vm_net") says it
// adds in the program's direction, the other direction staying unchanged:
//   bytes += len, packets += 1, l4_bytes[bucket] += len (TCP/UDP/ICMP+ICMPv6 by the IP
//   protocol carried, behind up to two VLAN tags and six IPv6 extension headers; OTHER
//   for non-IP, and for frames whose fixed IP header is cut short or invalid (wrong
//   version, IHL < 5) or whose protocol cannot be found), mcast/bcast += 1 by the
//   destination MAC's group bit (broadcast apart), tcp_syns += 1 for SYN without ACK in
//   a TCP header that is there (not in a later fragment, not past the frame's end).
// Every run must return -1 (TCX_NEXT / TC_ACT_UNSPEC).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "attach/net_programs.h"
#include "drain/net_drain.h"
#include "frame_builder.h"
#include "loopback_run.h"
#include "vmscope.h"

namespace vmscope::test {
namespace {

using F = FrameBuilder;
using Bytes = FrameBuilder::Bytes;

enum class L2 { kUnicast, kMulticast, kBroadcast };  // by destination MAC
constexpr L2 kUni = L2::kUnicast, kMulti = L2::kMulticast, kBcast = L2::kBroadcast;

struct Row {
  std::string name;
  Bytes frame;
  L2 l2;
  vs_l4 bucket;
  uint64_t syns;
};

void PrintTo(const Row& r, std::ostream* os) {
  *os << r.name << " (" << r.frame.size() << " B)";
}

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kSynAck = 0x12, kPshAck = 0x18, kRst = 0x04,
                  kFinAck = 0x11, kEcnSyn = 0xc2 /* CWR|ECE|SYN */;
constexpr uint16_t kCtag = 0x8100, kStag = 0x88a8;
constexpr Mac kMdns{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}};
constexpr Mac kIgmpV3{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x16}};
constexpr Mac kMldV2{{0x33, 0x33, 0x00, 0x00, 0x00, 0x16}};
constexpr Mac kSolicitedNode{{0x33, 0x33, 0xff, 0x00, 0x00, 0x01}};
constexpr Mac kLldp{{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}};
constexpr Mac kStp{{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}};
constexpr Mac kAlmostBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}};  // group bit set
constexpr Mac kNotGroup{{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}};         // group bit clear

// Offsets of TCP flags: Ethernet 14 (+4 per tag) + IP header + 13.
constexpr size_t kFlagsV4 = 14 + 20 + 13;  // 47: where the fast path reads them
constexpr size_t kFlagsV6 = 14 + 40 + 13;  // 67

// Hop-by-hop, then n - 1 destination options headers, then UDP.
Bytes ipv6_ext_chain_udp(int n) {
  F f(kUnicast);
  f.ipv6().ipv6_ext(0);
  for (int i = 1; i < n; ++i) f.ipv6_ext(60);
  return f.udp().payload(8).build();
}

std::vector<Row> rows() {
  return {
      // ---- IPv4 without options, >= 48 bytes: the fast path ----
      {"ipv4_tcp_syn", F(kUnicast).ipv4().tcp(kSyn, 40).build(), kUni, VS_L4_TCP, 1},
      {"ipv4_tcp_syn_ecn", F(kUnicast).ipv4().tcp(kEcnSyn, 40).build(), kUni, VS_L4_TCP, 1},
      {"ipv4_tcp_synack", F(kUnicast).ipv4().tcp(kSynAck, 40).build(), kUni, VS_L4_TCP, 0},
      {"ipv4_tcp_ack_padded", F(kUnicast).ipv4().tcp(kAck).pad_to(60).build(), kUni, VS_L4_TCP, 0},
      {"ipv4_tcp_pshack_data", F(kUnicast).ipv4().tcp(kPshAck, 32).payload(40).build(), kUni,
       VS_L4_TCP, 0},
      {"ipv4_tcp_rst", F(kUnicast).ipv4().tcp(kRst).pad_to(60).build(), kUni, VS_L4_TCP, 0},
      {"ipv4_tcp_finack", F(kUnicast).ipv4().tcp(kFinAck).pad_to(60).build(), kUni, VS_L4_TCP, 0},
      {"ipv4_tcp_flags_last_byte_syn", F(kUnicast).ipv4().tcp(kSyn).build(48), kUni, VS_L4_TCP, 1},
      {"ipv4_udp", F(kUnicast).ipv4().udp().payload(64).build(), kUni, VS_L4_UDP, 0},
      {"ipv4_icmp_echo", F(kUnicast).ipv4().icmp().payload(56).build(), kUni, VS_L4_ICMP, 0},
      {"ipv4_gre", F(kUnicast).ipv4().proto(47, 40).build(), kUni, VS_L4_OTHER, 0},
      // 58 is ICMPv6's number: over IPv4 it is some other protocol, not ICMP.
      {"ipv4_proto_58", F(kUnicast).ipv4().proto(58, 40).build(), kUni, VS_L4_OTHER, 0},
      {"ipv4_udp_broadcast_dhcp", F(kBroadcast).ipv4().udp().payload(300).build(), kBcast,
       VS_L4_UDP, 0},
      {"ipv4_udp_multicast_mdns", F(kMdns).ipv4().udp().payload(40).build(), kMulti, VS_L4_UDP, 0},
      {"ipv4_udp_to_ff_ff_ff_ff_ff_fe", F(kAlmostBroadcast).ipv4().udp().payload(20).build(),
       kMulti, VS_L4_UDP, 0},
      {"ipv4_udp_to_fe_ff_ff_ff_ff_ff", F(kNotGroup).ipv4().udp().payload(20).build(), kUni,
       VS_L4_UDP, 0},

      // ---- IPv4 fragments: only the first carries the TCP header ----
      {"ipv4_tcp_first_fragment_syn", F(kUnicast).ipv4(5, 0x2000).tcp(kSyn).payload(20).build(),
       kUni, VS_L4_TCP, 1},
      // Later fragments hold payload where the flags would be: 0x02 there is no SYN.
      {"ipv4_tcp_later_fragment",
       F(kUnicast).ipv4(5, 0x20b9).proto(6, 40).poke(kFlagsV4, kSyn).build(), kUni, VS_L4_TCP, 0},
      {"ipv4_tcp_last_fragment",
       F(kUnicast).ipv4(5, 0x0005).proto(6, 40).poke(kFlagsV4, kSyn).build(), kUni, VS_L4_TCP, 0},
      {"ipv4_tcp_fragment_offset_high_bits",
       F(kUnicast).ipv4(5, 0x2100).proto(6, 40).poke(kFlagsV4, kSyn).build(), kUni, VS_L4_TCP, 0},
      {"ipv4_udp_later_fragment", F(kUnicast).ipv4(5, 0x00b9).proto(17, 40).build(), kUni,
       VS_L4_UDP, 0},
      {"ipv4_options_tcp_later_fragment",
       F(kUnicast).ipv4(6, 0x0005).proto(6, 40).poke(kFlagsV4 + 4, kSyn).build(), kUni, VS_L4_TCP,
       0},

      // ---- IPv4 options (IHL > 5): the slow path skips them ----
      {"ipv4_options_tcp_syn", F(kUnicast).ipv4(6).tcp(kSyn, 40).build(), kUni, VS_L4_TCP, 1},
      // A reader at the fixed offset 47 would see this planted 0x02 (inside the ack number).
      {"ipv4_options_tcp_ack", F(kUnicast).ipv4(6).tcp(kAck).poke(kFlagsV4, kSyn).build(), kUni,
       VS_L4_TCP, 0},
      {"ipv4_max_options_tcp_syn", F(kUnicast).ipv4(15).tcp(kSyn).build(), kUni, VS_L4_TCP, 1},
      {"ipv4_options_udp", F(kUnicast).ipv4(6).udp().payload(20).build(), kUni, VS_L4_UDP, 0},
      // IGMPv3 carries the router-alert option.
      {"ipv4_igmp_router_alert_multicast", F(kIgmpV3).ipv4(6).proto(2, 16).pad_to(60).build(),
       kMulti, VS_L4_OTHER, 0},
      {"ipv4_options_cut_before_tcp", F(kUnicast).ipv4(15).tcp(kSyn).build(14 + 40), kUni,
       VS_L4_TCP, 0},

      // ---- IPv4, short or malformed ----
      {"ipv4_udp_no_payload_42", F(kUnicast).ipv4().udp().build(), kUni, VS_L4_UDP, 0},
      {"ipv4_icmp_42", F(kUnicast).ipv4().icmp().build(), kUni, VS_L4_ICMP, 0},
      {"ipv4_tcp_cut_before_flags", F(kUnicast).ipv4().tcp(kSyn).build(kFlagsV4), kUni, VS_L4_TCP,
       0},
      // (Behind a tag: a test run refuses an untagged IPv4 frame with a short header.)
      {"vlan_ipv4_header_truncated", F(kUnicast).vlan(kCtag, 10).ipv4().udp().build(18 + 19), kUni,
       VS_L4_OTHER, 0},
      {"vlan_tag_then_nothing_ipv4", F(kUnicast).vlan(kCtag, 10).ipv4().build(18), kUni,
       VS_L4_OTHER, 0},
      // IHL < 5: no valid IPv4 header (the kernel drops it), whatever its protocol byte says.
      {"ipv4_ihl_4", F(kUnicast).ipv4(4).tcp(kAck).poke(14 + 16 + 13, kSyn).build(), kUni,
       VS_L4_OTHER, 0},
      {"ipv4_ihl_0", F(kUnicast).ipv4(0).tcp(kAck).poke(14 + 13, kSyn).build(), kUni, VS_L4_OTHER,
       0},
      {"ipv4_ethertype_version_6", F(kUnicast).ipv4(5, 0x4000, 0x65).udp().payload(20).build(),
       kUni, VS_L4_OTHER, 0},

      // ---- IPv6 ----
      {"ipv6_tcp_syn", F(kUnicast).ipv6().tcp(kSyn, 40).build(), kUni, VS_L4_TCP, 1},
      {"ipv6_tcp_synack", F(kUnicast).ipv6().tcp(kSynAck, 40).build(), kUni, VS_L4_TCP, 0},
      {"ipv6_tcp_ack_data", F(kUnicast).ipv6().tcp(kPshAck, 32).payload(100).build(), kUni,
       VS_L4_TCP, 0},
      {"ipv6_udp", F(kUnicast).ipv6().udp().payload(64).build(), kUni, VS_L4_UDP, 0},
      {"ipv6_icmpv6_echo", F(kUnicast).ipv6().icmp().payload(56).build(), kUni, VS_L4_ICMP, 0},
      {"ipv6_neighbor_solicitation", F(kSolicitedNode).ipv6().icmp(135).payload(24).build(), kMulti,
       VS_L4_ICMP, 0},
      {"ipv6_tcp_cut_before_flags", F(kUnicast).ipv6().tcp(kSyn).build(kFlagsV6), kUni, VS_L4_TCP,
       0},
      {"vlan_ipv6_header_truncated", F(kUnicast).vlan(kCtag, 10).ipv6().udp().build(18 + 39), kUni,
       VS_L4_OTHER, 0},
      {"vlan_tag_then_nothing_ipv6", F(kUnicast).vlan(kCtag, 10).ipv6().build(18), kUni,
       VS_L4_OTHER, 0},
      {"ipv6_ethertype_version_4", F(kUnicast).ipv6(0x40).udp().payload(20).build(), kUni,
       VS_L4_OTHER, 0},
      // 1 is ICMPv4's number: over IPv6 it is not ICMPv6.
      {"ipv6_next_header_1", F(kUnicast).ipv6().proto(1, 16).build(), kUni, VS_L4_OTHER, 0},
      {"ipv6_no_next_header", F(kUnicast).ipv6().proto(59, 0).pad_to(60).build(), kUni, VS_L4_OTHER,
       0},
      {"ipv6_esp", F(kUnicast).ipv6().proto(50, 40).build(), kUni, VS_L4_OTHER, 0},

      // ---- IPv6 extension headers: bucketed by the protocol after them ----
      // MLDv2 reports (every guest's IPv6 start-up) are ICMPv6 behind a hop-by-hop header.
      {"ipv6_hbh_mld_report", F(kMldV2).ipv6().ipv6_ext(0).icmp(143).payload(20).build(), kMulti,
       VS_L4_ICMP, 0},
      {"ipv6_dstopts_tcp_syn", F(kUnicast).ipv6().ipv6_ext(60).tcp(kSyn, 40).build(), kUni,
       VS_L4_TCP, 1},
      {"ipv6_routing_udp", F(kUnicast).ipv6().ipv6_ext(43, 3).udp().payload(20).build(), kUni,
       VS_L4_UDP, 0},
      {"ipv6_hbh_dstopts_tcp_synack",
       F(kUnicast).ipv6().ipv6_ext(0).ipv6_ext(60, 2).tcp(kSynAck).build(), kUni, VS_L4_TCP, 0},
      {"ipv6_hbh_routing_dstopts_tcp_syn",
       F(kUnicast).ipv6().ipv6_ext(0).ipv6_ext(43, 3).ipv6_ext(60).tcp(kSyn).build(), kUni,
       VS_L4_TCP, 1},
      {"ipv6_long_hbh_tcp_syn", F(kUnicast).ipv6().ipv6_ext(0, 17).tcp(kSyn).build(), kUni,
       VS_L4_TCP, 1},
      {"ipv6_ah_tcp_syn", F(kUnicast).ipv6().ipv6_ah().tcp(kSyn).build(), kUni, VS_L4_TCP, 1},
      // Six extension headers are walked; a seventh leaves the frame in OTHER.
      {"ipv6_six_ext_headers_udp", ipv6_ext_chain_udp(6), kUni, VS_L4_UDP, 0},
      {"ipv6_seven_ext_headers_udp", ipv6_ext_chain_udp(7), kUni, VS_L4_OTHER, 0},
      {"ipv6_ext_header_truncated", F(kUnicast).ipv6().ipv6_ext(0).icmp().build(14 + 40 + 4), kUni,
       VS_L4_OTHER, 0},
      {"ipv6_fragment_first_tcp_syn",
       F(kUnicast).ipv6().ipv6_fragment(0, true).tcp(kSyn).payload(40).build(), kUni, VS_L4_TCP, 1},
      {"ipv6_fragment_later_tcp",
       F(kUnicast).ipv6().ipv6_fragment(100, false).proto(6, 60).poke(kFlagsV6 + 8, kSyn).build(),
       kUni, VS_L4_TCP, 0},
      {"ipv6_fragment_later_udp", F(kUnicast).ipv6().ipv6_fragment(7, true).proto(17, 60).build(),
       kUni, VS_L4_UDP, 0},
      // The destination options after the fragment header are in the first fragment only:
      // a later one does not say which protocol it carries.
      {"ipv6_fragment_later_dstopts",
       F(kUnicast).ipv6().ipv6_fragment(9, true).proto(60, 60).build(), kUni, VS_L4_OTHER, 0},
      {"ipv6_hbh_fragment_first_icmpv6",
       F(kUnicast).ipv6().ipv6_ext(0).ipv6_fragment(0, true).icmp().payload(40).build(), kUni,
       VS_L4_ICMP, 0},

      // ---- VLAN tags (in the frame, as a test run and software-tagged frames have them) ----
      {"vlan_ipv4_tcp_syn", F(kUnicast).vlan(kCtag, 10).ipv4().tcp(kSyn, 40).build(), kUni,
       VS_L4_TCP, 1},
      {"vlan_ipv4_tcp_synack", F(kUnicast).vlan(kCtag, 10).ipv4().tcp(kSynAck, 40).build(), kUni,
       VS_L4_TCP, 0},
      {"vlan_priority_tag_ipv4_udp", F(kUnicast).vlan(kCtag, 0).ipv4().udp().payload(20).build(),
       kUni, VS_L4_UDP, 0},
      {"vlan_ipv4_udp_broadcast", F(kBroadcast).vlan(kCtag, 10).ipv4().udp().payload(300).build(),
       kBcast, VS_L4_UDP, 0},
      {"vlan_ipv4_options_tcp_syn", F(kUnicast).vlan(kCtag, 10).ipv4(6).tcp(kSyn).build(), kUni,
       VS_L4_TCP, 1},
      {"vlan_ipv4_tcp_later_fragment",
       F(kUnicast).vlan(kCtag, 10).ipv4(5, 0x2005).proto(6, 40).poke(kFlagsV4 + 4, kSyn).build(),
       kUni, VS_L4_TCP, 0},
      {"vlan_ipv4_proto_58", F(kUnicast).vlan(kCtag, 10).ipv4().proto(58, 40).build(), kUni,
       VS_L4_OTHER, 0},
      {"vlan_ipv6_tcp_syn", F(kUnicast).vlan(kCtag, 10).ipv6().tcp(kSyn).build(), kUni, VS_L4_TCP,
       1},
      {"vlan_ipv6_hbh_mld_report",
       F(kMldV2).vlan(kCtag, 10).ipv6().ipv6_ext(0).icmp(143).payload(20).build(), kMulti,
       VS_L4_ICMP, 0},
      {"vlan_arp_broadcast", F(kBroadcast).vlan(kCtag, 10).ethertype(0x0806).payload(28).build(),
       kBcast, VS_L4_OTHER, 0},
      {"vlan_tag_truncated", F(kUnicast).vlan(kCtag, 10).ipv4().build(14 + 2), kUni, VS_L4_OTHER,
       0},
      {"stag_ipv4_udp", F(kUnicast).vlan(kStag, 100).ipv4().udp().payload(20).build(), kUni,
       VS_L4_UDP, 0},
      // QinQ: an 802.1ad (or, older, an 802.1Q) outer tag, then an 802.1Q tag.
      {"qinq_stag_ctag_ipv4_tcp_syn",
       F(kUnicast).vlan(kStag, 100).vlan(kCtag, 10).ipv4().tcp(kSyn, 40).build(), kUni, VS_L4_TCP,
       1},
      {"qinq_stag_ctag_ipv4_options_later_fragment",
       F(kUnicast)
           .vlan(kStag, 100)
           .vlan(kCtag, 10)
           .ipv4(7, 0x0010)
           .proto(6, 40)
           .poke(kFlagsV4 + 8 + 8, kSyn)
           .build(),
       kUni, VS_L4_TCP, 0},
      {"qinq_ctag_ctag_ipv6_icmpv6",
       F(kUnicast).vlan(kCtag, 100).vlan(kCtag, 10).ipv6().icmp().payload(32).build(), kUni,
       VS_L4_ICMP, 0},
      {"qinq_stag_ctag_ipv4_udp_broadcast",
       F(kBroadcast).vlan(kStag, 100).vlan(kCtag, 10).ipv4().udp().payload(20).build(), kBcast,
       VS_L4_UDP, 0},
      {"qinq_inner_tag_truncated", F(kUnicast).vlan(kStag, 100).vlan(kCtag, 10).ipv4().build(20),
       kUni, VS_L4_OTHER, 0},
      // Two tags at most are parsed: a third leaves the frame in OTHER.
      {"three_tags_ipv4_udp",
       F(kUnicast).vlan(kStag, 1).vlan(kCtag, 2).vlan(kCtag, 3).ipv4().udp().payload(20).build(),
       kUni, VS_L4_OTHER, 0},

      // ---- not IP, and bare Ethernet headers ----
      {"arp_request_broadcast_42", F(kBroadcast).ethertype(0x0806).payload(28).build(), kBcast,
       VS_L4_OTHER, 0},
      {"arp_reply_unicast_60", F(kUnicast).ethertype(0x0806).payload(28).pad_to(60).build(), kUni,
       VS_L4_OTHER, 0},
      {"lldp_multicast", F(kLldp).ethertype(0x88cc).payload(46).build(), kMulti, VS_L4_OTHER, 0},
      {"stp_bpdu_8023_length", F(kStp).ethertype(0x0026).payload(38).pad_to(60).build(), kMulti,
       VS_L4_OTHER, 0},
      {"pppoe_session", F(kUnicast).ethertype(0x8864).payload(60).build(), kUni, VS_L4_OTHER, 0},
      {"eth_header_only_arp", F(kBroadcast).ethertype(0x0806).build(), kBcast, VS_L4_OTHER, 0},
      {"eth_header_only_vlan", F(kMdns).ethertype(kCtag).build(), kMulti, VS_L4_OTHER, 0},
  };
}

// What one frame adds, from its row.
vs_net_counters expected_delta(const Row& r) {
  vs_net_counters c{};
  c.bytes = r.frame.size();
  c.packets = 1;
  c.mcast_packets = r.l2 == L2::kMulticast;
  c.bcast_packets = r.l2 == L2::kBroadcast;
  c.l4_bytes[r.bucket] = r.frame.size();
  c.tcp_syns = r.syns;
  return c;
}

// vs_net_counters is all u64 (user/drain/contract_check.h pins it): compared and
// subtracted word by word, shown field by field.
constexpr size_t kWords = sizeof(vs_net_counters) / sizeof(uint64_t);
static_assert(sizeof(vs_net_counters) == kWords * sizeof(uint64_t));
using Words = std::array<uint64_t, kWords>;

std::string describe(const vs_net_counters& c) {
  std::ostringstream o;
  o << "bytes=" << c.bytes << " packets=" << c.packets << " mcast=" << c.mcast_packets
    << " bcast=" << c.bcast_packets << " tcp=" << c.l4_bytes[VS_L4_TCP]
    << " udp=" << c.l4_bytes[VS_L4_UDP] << " icmp=" << c.l4_bytes[VS_L4_ICMP]
    << " other=" << c.l4_bytes[VS_L4_OTHER] << " syns=" << c.tcp_syns;
  return o.str();
}

void expect_counters(const vs_net_counters& want, const vs_net_counters& got,
                     const std::string& what) {
  EXPECT_EQ(std::bit_cast<Words>(want), std::bit_cast<Words>(got))
      << what << "\n  want " << describe(want) << "\n  got  " << describe(got);
}

vs_net_counters minus(const vs_net_counters& a, const vs_net_counters& b) {
  Words d = std::bit_cast<Words>(a);
  const Words w = std::bit_cast<Words>(b);
  for (size_t i = 0; i < kWords; ++i) d[i] -= w[i];
  return std::bit_cast<vs_net_counters>(d);
}

// The loaded programs with a slot for lo, shared by every row.
class Classify : public ::testing::TestWithParam<std::tuple<Row, vs_dir>> {
 protected:
  static void SetUpTestSuite() { load_with_loopback_slot(programs_, slot_); }
  static void TearDownTestSuite() { programs_.reset(); }

  void SetUp() override { ASSERT_TRUE(programs_) << "BPF programs did not load"; }

  // Both directions of the slot, summed over CPUs.
  static vs_dev_counters read_slot() {
    std::vector<vs_dev_counters> percpu(static_cast<size_t>(libbpf_num_possible_cpus()));
    vs_dev_counters sum{};
    if (bpf_map_lookup_elem(programs_->net_stats_fd(), &slot_, percpu.data()) != 0) {
      ADD_FAILURE() << "read net_stats[" << slot_ << "]: " << strerror(errno);
      return sum;
    }
    for (const auto& cpu : percpu)
      for (int d = 0; d < VS_DIR_COUNT; ++d) add_counters(sum.dir[d], cpu.dir[d]);
    return sum;
  }

  static int prog_fd(vs_dir dir) {
    return dir == VS_DIR_INGRESS ? programs_->ingress_prog_fd() : programs_->egress_prog_fd();
  }

  // One test run of the frame on lo.
  static LoopbackRun run(vs_dir dir, const Bytes& frame) {
    return run_on_loopback(prog_fd(dir), frame);
  }

  static inline std::optional<NetPrograms> programs_;
  static inline uint32_t slot_ = 0;
};

TEST_P(Classify, CountsWhatTheContractSays) {
  const auto& [row, dir] = GetParam();
  const vs_dir other = dir == VS_DIR_INGRESS ? VS_DIR_EGRESS : VS_DIR_INGRESS;
  const vs_dev_counters before = read_slot();
  const LoopbackRun r = run(dir, row.frame);
  ASSERT_EQ(r.err, 0) << "bpf_prog_test_run_opts: " << strerror(r.err);
  EXPECT_EQ(r.retval, -1) << "must return TCX_NEXT / TC_ACT_UNSPEC";
  const vs_dev_counters after = read_slot();
  expect_counters(expected_delta(row), minus(after.dir[dir], before.dir[dir]), "this direction");
  expect_counters(vs_net_counters{}, minus(after.dir[other], before.dir[other]), "other direction");
}

std::string row_name(const ::testing::TestParamInfo<std::tuple<Row, vs_dir>>& info) {
  const auto& [row, dir] = info.param;
  return row.name + (dir == VS_DIR_INGRESS ? "_ingress" : "_egress");
}

INSTANTIATE_TEST_SUITE_P(Frames, Classify,
                         ::testing::Combine(::testing::ValuesIn(rows()),
                                            ::testing::Values(VS_DIR_INGRESS, VS_DIR_EGRESS)),
                         row_name);

// Frames a test run may refuse (EINVAL) before the program runs: shorter than an Ethernet
// header (bpf_test_init), or an IPv4/IPv6 ethertype without a whole fixed IP header (6.x
// checks the network header). Real taps and bridges do hand the latter to tc. Refused,
// the counters must not move; run, the program must count them as above and continue.
std::vector<Row> refusable_rows() {
  return {
      {"frame_1_byte", F(kBroadcast).ipv4().udp().build(1), kUni, VS_L4_OTHER, 0},
      {"frame_13_bytes", F(kBroadcast).ipv4().udp().build(13), kUni, VS_L4_OTHER, 0},
      {"eth_header_only_ipv4", F(kUnicast).ethertype(0x0800).build(), kUni, VS_L4_OTHER, 0},
      {"eth_header_only_ipv6", F(kMldV2).ethertype(0x86dd).build(), kMulti, VS_L4_OTHER, 0},
      {"ipv4_header_truncated", F(kUnicast).ipv4().tcp(kSyn).build(14 + 19), kUni, VS_L4_OTHER, 0},
      {"ipv6_header_truncated", F(kUnicast).ipv6().tcp(kSyn).build(14 + 39), kUni, VS_L4_OTHER, 0},
  };
}

class ClassifyRefusable : public Classify {};

TEST_P(ClassifyRefusable, RefusedOrCountedAsTheContractSays) {
  const auto& [row, dir] = GetParam();
  const vs_dev_counters before = read_slot();
  const LoopbackRun r = run(dir, row.frame);
  const vs_dev_counters after = read_slot();
  vs_net_counters want{};
  if (r.err == 0) {
    EXPECT_EQ(r.retval, -1) << "must return TCX_NEXT / TC_ACT_UNSPEC";
    want = expected_delta(row);
  } else {
    EXPECT_EQ(r.err, EINVAL) << strerror(r.err);
  }
  expect_counters(want, minus(after.dir[dir], before.dir[dir]), "this direction");
}

INSTANTIATE_TEST_SUITE_P(Frames, ClassifyRefusable,
                         ::testing::Combine(::testing::ValuesIn(refusable_rows()),
                                            ::testing::Values(VS_DIR_INGRESS, VS_DIR_EGRESS)),
                         row_name);

}  // namespace
}  // namespace vmscope::test
