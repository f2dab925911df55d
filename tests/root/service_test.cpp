// Root test: the service counters (vm_service, bpf/service.h) for crafted frames run
// through the real vs_tc_ingress / vs_tc_egress (BPF_PROG_TEST_RUN on lo, which has a
// slot as a VM tap would) and read back through the real drain (net_sum.bpf.c's sums and
// sweep). On a tap, egress is host -> VM and ingress VM -> host; the VM is 10.0.0.2 or
// fe80::2, its peer 10.0.0.1 or fe80::1 (frame_builder.h's addresses).
//
// Every test checks exact deltas of all 30 counters: what it expects moves by exactly
// that, everything else stays.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <chrono>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attach/net_programs.h"
#include "drain/net_drain.h"
#include "frame_builder.h"
#include "loopback_run.h"
#include "test_env.h"
#include "vmscope.h"

namespace vmscope::test {
namespace {

using F = FrameBuilder;
using Bytes = FrameBuilder::Bytes;
using Clock = std::chrono::steady_clock;

constexpr uint8_t kSyn = 0x02, kSynAck = 0x12, kRst = 0x04, kRstAck = 0x14, kAck = 0x10,
                  kPshAck = 0x18;

// The classification path a frame takes in net.bpf.c: the service hooks sit in each.
enum class Stack {
  kIpv4,         // classify_ip4 at offset 14
  kIpv4Vlan,     // classify_ip4 behind a tag
  kIpv6,         // classify_ip6
  kIpv6DstOpts,  // classify_slow (extension header)
};
const char* name_of(Stack s) {
  switch (s) {
    case Stack::kIpv4:
      return "ipv4";
    case Stack::kIpv4Vlan:
      return "ipv4_vlan";
    case Stack::kIpv6:
      return "ipv6";
    case Stack::kIpv6DstOpts:
      return "ipv6_dstopts";
  }
  return "?";
}

// Ethernet and IP headers of a frame from the VM (to it after swap_addrs()).
F ip(Stack s) {
  F f(kUnicast);
  switch (s) {
    case Stack::kIpv4:
      f.ipv4();
      break;
    case Stack::kIpv4Vlan:
      f.vlan(0x8100, 10).ipv4();
      break;
    case Stack::kIpv6:
      f.ipv6();
      break;
    case Stack::kIpv6DstOpts:
      f.ipv6().ipv6_ext(60);
      break;
  }
  return f;
}

// A TCP segment between VM port vm_port and peer port peer_port.
Bytes tcp(Stack s, bool to_vm, uint8_t flags, uint16_t vm_port, uint16_t peer_port,
          std::string_view payload = {}) {
  F f = ip(s);
  f.tcp(flags, 32);
  if (to_vm)
    f.ports(peer_port, vm_port).swap_addrs();
  else
    f.ports(vm_port, peer_port);
  return f.text(payload).build();
}

// A DNS message between the VM's port 53 and the client's port.
Bytes dns(Stack s, bool to_vm, uint16_t client_port, uint16_t id, uint16_t flags) {
  F f = ip(s);
  f.udp();
  if (to_vm)
    f.ports(client_port, 53).swap_addrs();
  else
    f.ports(53, client_port);
  return f.dns(id, flags)
      .text(
          "\x03www\x07"
          "example\x00\x00\x01\x00\x01")
      .build();
}
constexpr uint16_t kQuery = 0x0100;     // RD
constexpr uint16_t kResponse = 0x8180;  // QR RD RA, RCODE 0

using Words = std::array<uint64_t, VS_SERVICE_COUNTER_COUNT>;
static_assert(sizeof(vs_service_counters) == sizeof(Words));

std::string describe(const vs_service_counters& c) {
  std::ostringstream o;
#define VS_DESCRIBE_(field) \
  if (c.field) o << " " #field "=" << c.field;
  VS_SERVICE_COUNTERS(VS_DESCRIBE_)
#undef VS_DESCRIBE_
  return o.str().empty() ? " (none)" : o.str();
}

vs_service_counters minus(const vs_service_counters& a, const vs_service_counters& b) {
  Words d = std::bit_cast<Words>(a);
  const Words w = std::bit_cast<Words>(b);
  for (size_t i = 0; i < d.size(); ++i) d[i] -= w[i];
  return std::bit_cast<vs_service_counters>(d);
}

class Service : public ::testing::TestWithParam<Stack> {
 protected:
  static void SetUpTestSuite() {
    load_with_loopback_slot(programs_, slot_);
    if (!programs_) return;
    drain_.emplace(NetMapFds{programs_->net_stats_fd(), programs_->service_stats_fd(),
                             programs_->service_pending_fd()});
  }
  static void TearDownTestSuite() {
    drain_.reset();
    programs_.reset();
  }

  // Each test starts with nothing pending (a previous test's leftovers would match).
  void SetUp() override {
    ASSERT_TRUE(programs_) << "BPF programs did not load";
    clear_pending();
    before_ = read();
  }

  static void clear_pending() {
    const int fd = programs_->service_pending_fd();
    vs_pending_key k{};
    while (bpf_map_get_next_key(fd, nullptr, &k) == 0) bpf_map_delete_elem(fd, &k);
  }

  // The slot's service counters, summed by the drain (the agent's path).
  static vs_service_counters read() {
    auto st = drain_->read(slot_ + 1);
    EXPECT_TRUE(st) << st.error().message;
    return drain_->service(slot_);
  }

  static void run(bool egress, const Bytes& frame) {
    const LoopbackRun r =
        run_on_loopback(egress ? programs_->egress_prog_fd() : programs_->ingress_prog_fd(), frame);
    ASSERT_EQ(r.err, 0) << strerror(r.err);
    EXPECT_EQ(r.retval, -1) << "must return TCX_NEXT / TC_ACT_UNSPEC";
  }
  // Host -> VM (the tap's egress) and VM -> host (its ingress).
  static void to_vm(const Bytes& f) { run(true, f); }
  static void from_vm(const Bytes& f) { run(false, f); }

  // What the test's frames added since SetUp must equal want, field by field.
  void expect_delta(const vs_service_counters& want) {
    const vs_service_counters got = minus(read(), before_);
    EXPECT_EQ(std::bit_cast<Words>(want), std::bit_cast<Words>(got))
        << "\n  want" << describe(want) << "\n  got " << describe(got);
  }

  static inline std::optional<NetPrograms> programs_;
  static inline std::optional<NetDrain> drain_;
  static inline uint32_t slot_ = 0;
  vs_service_counters before_{};
};

// The VM serves: SYN (retransmitted: counted once, the first one's time kept), SYN-ACK,
// the SYN again (its SYN-ACK was lost beyond the tap: the same attempt), a retransmitted
// SYN-ACK (nothing left to match), then data.
TEST_P(Service, ServerAccepts) {
  const Stack s = GetParam();
  const auto t0 = Clock::now();
  to_vm(tcp(s, true, kSyn, 80, 40001));
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  to_vm(tcp(s, true, kSyn, 80, 40001));
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  from_vm(tcp(s, false, kSynAck, 80, 40001));
  const auto elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  to_vm(tcp(s, true, kSyn, 80, 40001));
  from_vm(tcp(s, false, kSynAck, 80, 40001));
  to_vm(tcp(s, true, kAck, 80, 40001));
  from_vm(tcp(s, false, kPshAck, 80, 40001, "hello, not HTTP"));

  const vs_service_counters got = minus(read(), before_);
  // From the first SYN: at least both sleeps, at most the whole sequence.
  EXPECT_GE(got.handshake_sum_us, 30000u);
  EXPECT_LE(got.handshake_sum_us, static_cast<uint64_t>(elapsed_us));
  vs_service_counters want{};
  want.tcp_syn_in = 1;
  want.tcp_accepted = 1;
  want.handshake_count = 1;
  want.handshake_sum_us = got.handshake_sum_us;
  // >= 30 ms: above the 10 ms bucket; within 100 ms unless the machine stalled
  want.handshake_le_100ms = got.handshake_sum_us <= 100000;
  want.handshake_le_1s = 1;
  expect_delta(want);
}

// Two connection attempts from two client ports: two SYNs in, two accepted, each bucketed.
TEST_P(Service, ServerCountsEachConnection) {
  const Stack s = GetParam();
  for (uint16_t port : {40011, 40012}) {
    to_vm(tcp(s, true, kSyn, 443, port));
    from_vm(tcp(s, false, kSynAck, 443, port));
  }
  const vs_service_counters got = minus(read(), before_);
  vs_service_counters want{};
  want.tcp_syn_in = 2;
  want.tcp_accepted = 2;
  want.handshake_count = 2;
  want.handshake_sum_us = got.handshake_sum_us;
  // cumulative buckets, whatever these test runs took
  want.handshake_le_100us = got.handshake_le_100us;
  want.handshake_le_1ms = got.handshake_le_1ms;
  want.handshake_le_10ms = got.handshake_le_10ms;
  want.handshake_le_100ms = got.handshake_le_100ms;
  want.handshake_le_1s = 2;
  EXPECT_LE(got.handshake_le_100us, got.handshake_le_1ms);
  EXPECT_LE(got.handshake_le_1ms, got.handshake_le_10ms);
  EXPECT_LE(got.handshake_le_10ms, got.handshake_le_100ms);
  EXPECT_LE(got.handshake_le_100ms, 2u);
  EXPECT_LT(got.handshake_sum_us, 2000000u);
  expect_delta(want);
}

// A closed port: the VM answers the SYN with RST|ACK; a later RST without a pending SYN
// is only a RST; a RST towards the VM is none of the VM's.
TEST_P(Service, ServerRefuses) {
  const Stack s = GetParam();
  to_vm(tcp(s, true, kSyn, 81, 40002));
  from_vm(tcp(s, false, kRstAck, 81, 40002));
  from_vm(tcp(s, false, kRst, 81, 40002));
  to_vm(tcp(s, true, kRst, 82, 40003));
  vs_service_counters want{};
  want.tcp_syn_in = 1;
  want.tcp_refused = 1;
  want.tcp_rst_out = 2;
  expect_delta(want);
}

// An accepted connection the VM later resets: a RST, not a refusal.
TEST_P(Service, AcceptedThenReset) {
  const Stack s = GetParam();
  to_vm(tcp(s, true, kSyn, 80, 40021));
  from_vm(tcp(s, false, kSynAck, 80, 40021));
  from_vm(tcp(s, false, kRstAck, 80, 40021));
  const vs_service_counters got = minus(read(), before_);
  vs_service_counters want{};
  want.tcp_syn_in = 1;
  want.tcp_accepted = 1;
  want.tcp_rst_out = 1;
  want.handshake_count = 1;
  want.handshake_sum_us = got.handshake_sum_us;
  want.handshake_le_100us = got.handshake_le_100us;
  want.handshake_le_1ms = got.handshake_le_1ms;
  want.handshake_le_10ms = got.handshake_le_10ms;
  want.handshake_le_100ms = got.handshake_le_100ms;
  want.handshake_le_1s = 1;
  expect_delta(want);
}

// A SYN-ACK or RST that answers no SYN seen (other port, or never asked) counts nothing
// but the RST.
TEST_P(Service, UnmatchedAnswers) {
  const Stack s = GetParam();
  to_vm(tcp(s, true, kSyn, 80, 40004));
  from_vm(tcp(s, false, kSynAck, 80, 40005));    // another client port
  from_vm(tcp(s, false, kSynAck, 8080, 40004));  // another server port
  to_vm(tcp(s, true, kSynAck, 80, 40004));       // towards the VM: a client-side answer
  vs_service_counters want{};
  want.tcp_syn_in = 1;
  expect_delta(want);
}

// The VM connects out: SYN (retransmitted: once, also after the SYN-ACK), SYN-ACK from the
// peer; another SYN refused by the peer's RST.
TEST_P(Service, ClientConnects) {
  const Stack s = GetParam();
  const auto t0 = Clock::now();
  from_vm(tcp(s, false, kSyn, 50001, 443));
  from_vm(tcp(s, false, kSyn, 50001, 443));
  to_vm(tcp(s, true, kSynAck, 50001, 443));
  from_vm(tcp(s, false, kSyn, 50001, 443));  // its SYN-ACK was lost in the VM: the same
  const auto elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  from_vm(tcp(s, false, kSyn, 50002, 25));
  to_vm(tcp(s, true, kRstAck, 50002, 25));
  const vs_service_counters got = minus(read(), before_);
  EXPECT_LE(got.connect_sum_us, static_cast<uint64_t>(elapsed_us));
  vs_service_counters want{};
  want.tcp_connect_out = 2;
  want.tcp_connect_ok = 1;
  want.tcp_connect_refused = 1;
  want.connect_count = 1;
  want.connect_sum_us = got.connect_sum_us;
  expect_delta(want);
}

// DNS: a query, then its response with each RCODE class; responses are counted even
// unmatched (other id, other client port), latency only when matched.
TEST_P(Service, DnsResponsesByRcode) {
  const Stack s = GetParam();
  struct Case {
    uint16_t rcode;
    __u64 vs_service_counters::*field;
  };
  const Case cases[] = {
      {0, &vs_service_counters::dns_noerror},  {3, &vs_service_counters::dns_nxdomain},
      {2, &vs_service_counters::dns_servfail}, {5, &vs_service_counters::dns_refused},
      {1, &vs_service_counters::dns_other},    {4, &vs_service_counters::dns_other}};
  vs_service_counters want{};
  uint16_t id = 0x1000;
  for (const Case& c : cases) {
    to_vm(dns(s, true, 33001, id, kQuery));
    to_vm(dns(s, true, 33001, id, kQuery));  // retransmitted: the first one's time kept
    from_vm(dns(s, false, 33001, id, kResponse | c.rcode));
    from_vm(dns(s, false, 33001, id, kResponse | c.rcode));  // duplicate: nothing to match
    want.dns_responses += 2;
    want.*c.field += 2;
    want.dns_latency_count += 1;
    ++id;
  }
  // Unmatched: another id, another client port; a query from the VM's port 53 (QR 0) is
  // no response; a response towards the VM is none of the VM's.
  to_vm(dns(s, true, 33002, 0x2000, kQuery));
  from_vm(dns(s, false, 33002, 0x2001, kResponse | 3));
  from_vm(dns(s, false, 33003, 0x2000, kResponse));
  from_vm(dns(s, false, 33002, 0x2000, kQuery));
  to_vm(dns(s, true, 33002, 0x2000, kResponse));
  want.dns_responses += 2;
  want.dns_nxdomain += 1;
  want.dns_noerror += 1;
  const vs_service_counters got = minus(read(), before_);
  want.dns_latency_sum_us = got.dns_latency_sum_us;
  EXPECT_LT(got.dns_latency_sum_us, 2000000u);
  expect_delta(want);
}

// HTTP: segments from the VM whose payload begins "HTTP/1.x N" count by N's class.
TEST_P(Service, HttpStatusClasses) {
  const Stack s = GetParam();
  const char* responses[] = {
      "HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
      "HTTP/1.0 204 No Content\r\n\r\n", "HTTP/1.1 301 Moved Permanently\r\n",
      "HTTP/1.1 404 Not Found\r\n", "HTTP/1.0 404 Not Found\r\n",
      "HTTP/1.1 503 Service Unavailable\r\n",
      "HTTP/1.1 5",  // the first digit is all it takes
      // not counted:
      "HTTP/1.1 600 Nonsense\r\n", "HTTP/1.1 099 x\r\n", "HTTP/2 200\r\n", "HTTP/1.1 ",
      "http/1.1 200 OK\r\n", "GET / HTTP/1.1\r\n", " HTTP/1.1 200 OK\r\n", "HTTP/1.1_200 OK\r\n"};
  for (const char* r : responses) from_vm(tcp(s, false, kPshAck, 80, 40100, r));
  // Towards the VM (a request quoting a status line) and a SYN carrying one: not counted.
  to_vm(tcp(s, true, kPshAck, 80, 40100, "HTTP/1.1 200 OK\r\n"));
  vs_service_counters want{};
  want.http_1xx = 1;
  want.http_2xx = 2;
  want.http_3xx = 1;
  want.http_4xx = 2;
  want.http_5xx = 2;
  expect_delta(want);
}

INSTANTIATE_TEST_SUITE_P(Stacks, Service,
                         ::testing::Values(Stack::kIpv4, Stack::kIpv4Vlan, Stack::kIpv6,
                                           Stack::kIpv6DstOpts),
                         [](const auto& info) { return std::string(name_of(info.param)); });

// The same programs, for the tests that are not run per stack.
class ServiceSlot : public Service {};

// The per-tick sweep: entries older than its age expire; a SYN to the VM never answered
// counts as tcp_unanswered, a client connect and a DNS query just go. The fill is what
// is left. A late answer then matches nothing.
TEST_F(ServiceSlot, SweepCountsUnanswered) {
  NetDrain sweeper(NetMapFds{programs_->net_stats_fd(), programs_->service_stats_fd(),
                             programs_->service_pending_fd(), 200'000'000});  // 200 ms
  ASSERT_TRUE(sweeper.read(slot_ + 1));
  to_vm(tcp(Stack::kIpv4, true, kSyn, 80, 41001));
  to_vm(tcp(Stack::kIpv6, true, kSyn, 80, 41002));
  from_vm(tcp(Stack::kIpv4, false, kSyn, 51001, 443));
  to_vm(dns(Stack::kIpv4, true, 34001, 7, kQuery));
  ASSERT_TRUE(sweeper.read(slot_ + 1));
  EXPECT_EQ(sweeper.pending_entries(), 4u);
  EXPECT_EQ(sweeper.service(slot_).tcp_unanswered, before_.tcp_unanswered);

  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  to_vm(tcp(Stack::kIpv4, true, kSyn, 80, 41003));  // young: stays
  ASSERT_TRUE(sweeper.read(slot_ + 1));
  EXPECT_EQ(sweeper.pending_entries(), 1u);
  // answers after the sweep: nothing left to match
  from_vm(tcp(Stack::kIpv4, false, kSynAck, 80, 41001));
  to_vm(tcp(Stack::kIpv4, true, kSynAck, 51001, 443));
  from_vm(dns(Stack::kIpv4, false, 34001, 7, kResponse));
  vs_service_counters want{};
  want.tcp_syn_in = 3;
  want.tcp_unanswered = 2;
  want.tcp_connect_out = 1;
  want.dns_responses = 1;
  want.dns_noerror = 1;
  expect_delta(want);
}

// A bridge's slot counts no service health (its traffic is the host's): the datapath
// checks the slot's flag, which assign_slot sets for taps only.
TEST_F(ServiceSlot, NotOnBridgeSlots) {
  const uint32_t off = 0, on = 1;
  ASSERT_EQ(bpf_map_update_elem(programs_->service_slots_fd(), &slot_, &off, BPF_ANY), 0);
  to_vm(tcp(Stack::kIpv4, true, kSyn, 80, 42001));
  from_vm(tcp(Stack::kIpv4, false, kRstAck, 80, 42001));
  from_vm(tcp(Stack::kIpv4, false, kPshAck, 80, 42002, "HTTP/1.1 200 OK\r\n"));
  from_vm(dns(Stack::kIpv4, false, 35001, 9, kResponse));
  ASSERT_EQ(bpf_map_update_elem(programs_->service_slots_fd(), &slot_, &on, BPF_ANY), 0);
  expect_delta(vs_service_counters{});
}

// Which slots count service health is decided by assign_slot: every device but a bridge
// (the devices vmscope counts are VM taps and their bridges).
TEST(ServiceSlots, BridgesCountNoService) {
  Netns ns;
  ns.must("ip link add vsbr0 type bridge");
  ns.must("ip tuntap add dev vstap0 mode tap");
  ns.must("ip link set vstap0 master vsbr0");
  uint32_t bridge_flag = 7, tap_flag = 7;
  std::string error;
  std::thread t([&] {  // in the namespace: assign_slot asks the device there
    int nsfd = open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
      error = "setns: " + std::string(strerror(errno));
      return;
    }
    close(nsfd);
    auto p = NetPrograms::load();
    if (!p) {
      error = p.error().message;
      return;
    }
    auto br = p->assign_slot(static_cast<int>(if_nametoindex("vsbr0")));
    auto tap = p->assign_slot(static_cast<int>(if_nametoindex("vstap0")));
    if (!br || !tap) {
      error = !br ? br.error().message : tap.error().message;
      return;
    }
    bpf_map_lookup_elem(p->service_slots_fd(), &*br, &bridge_flag);
    bpf_map_lookup_elem(p->service_slots_fd(), &*tap, &tap_flag);
  });
  t.join();
  ASSERT_EQ(error, "");
  EXPECT_EQ(bridge_flag, 0u);
  EXPECT_EQ(tap_flag, 1u);
}

}  // namespace
}  // namespace vmscope::test
