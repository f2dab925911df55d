// Root tests: the agent on real taps and a real bridge in a network namespace. `interface`
// must equal the kernel's own interface counters exactly, counted bytes (vm_net, bridge)
// the traffic since attach, per-protocol
// bytes must equal the traffic sent, and what the agent keeps after exit is only its own
// (`vmscope cleanup` removes it; foreign filters stay).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>

#include "bridge_env.h"
#include "test_env.h"

namespace vmscope::test {
namespace {

class TapAccounting : public ::testing::TestWithParam<std::string> {};

TEST_P(TapAccounting, CountsEqualKernelCountersAndTrafficSent) {
  Bridge br;
  br.add_tap("vmmtap0");
  auto holder = br.hold("solo5-hvt", kSolo5Args);
  br.ns.must("ip neigh add 10.99.0.2 lladdr 02:00:00:00:00:02 dev br0 nud permanent");
  const Mac br_mac = mac_of(br.ns, "br0");
  const Netns& ns = br.ns;
  // A frame the "VM" sent before the agent started: `interface`, the tap's own counters,
  // include it (as albatross and `ip -s link` do); vm_net counts from attach. Multicast, so
  // that the host sends nothing back before the agent attached (the tally counts that).
  const Mac all_hosts{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
  inject(*holder, ipv4_frame(all_hosts, kVmMac, ip("10.99.0.2"), ip("224.0.0.1"), 17, 12));
  ASSERT_TRUE(wait_stat(ns, "vmmtap0", "rx_packets", 1));
  const uint64_t rx0 = ns.stat("vmmtap0", "rx_bytes"), rxp0 = ns.stat("vmmtap0", "rx_packets");
  const uint64_t tx0 = ns.stat("vmmtap0", "tx_bytes"), txp0 = ns.stat("vmmtap0", "tx_packets");
  const uint64_t brrx0 = ns.stat("br0", "rx_packets"), brtx0 = ns.stat("br0", "tx_packets");

  auto agent = br.agent({"--attach", GetParam()});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  const std::string programs = held_programs(agent->pid());
  ASSERT_NE(programs, "");

  // What the VM sends, by protocol (frame sizes include the 14-byte Ethernet header).
  const uint32_t vm = ip("10.99.0.2"), host = ip("10.99.0.1");
  const Mac mcast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
  uint64_t udp = 0, tcp = 0, icmp = 0, other = 0;
  for (int i = 0; i < 10; ++i) {
    auto f = ipv4_frame(br_mac, kVmMac, vm, host, 17, 200);
    udp += f.size();
    inject(*holder, f);
  }
  for (int i = 0; i < 3; ++i) {
    auto f = ipv4_frame(mcast, kVmMac, vm, ip("224.0.0.1"), 17, 50);
    udp += f.size();
    inject(*holder, f);
  }
  for (int i = 0; i < 5; ++i) {
    auto f = ipv4_frame(br_mac, kVmMac, vm, host, 6, 20, 0x02);  // SYN: a new connection
    tcp += f.size();
    inject(*holder, f);
  }
  for (int i = 0; i < 3; ++i) {
    auto f = ipv4_frame(br_mac, kVmMac, vm, host, 6, 120, 0x12);  // SYN-ACK: not new
    tcp += f.size();
    inject(*holder, f);
  }
  for (int i = 0; i < 4; ++i) {
    auto f = ipv4_frame(br_mac, kVmMac, vm, host, 1, 64);
    icmp += f.size();
    inject(*holder, f);
  }
  for (int i = 0; i < 2; ++i) {
    auto f = arp_frame(kVmMac, vm, host);
    other += f.size();
    inject(*holder, f);
  }
  // What the host sends to the VM: UDP datagrams and TCP connection attempts.
  ns.must("bash -c 'for i in $(seq 20); do printf %0300d 0 > /dev/udp/10.99.0.2/9; done'");
  for (int i = 0; i < 3; ++i) sh(ns.exec("timeout 0.3 bash -c 'exec 3<>/dev/tcp/10.99.0.2/80'"));
  holder->close_stdin();
  auto tally_line =
      holder->wait_line([](const std::string& l) { return l.rfind("rx ", 0) == 0; }, 10s);
  ASSERT_TRUE(tally_line);
  auto tally = parse_tally(*tally_line);

  const uint64_t rx1 = ns.stat("vmmtap0", "rx_bytes"), rxp1 = ns.stat("vmmtap0", "rx_packets");
  const uint64_t tx1 = ns.stat("vmmtap0", "tx_bytes"), txp1 = ns.stat("vmmtap0", "tx_packets");
  const uint64_t brrx1 = ns.stat("br0", "rx_packets"), brtx1 = ns.stat("br0", "tx_packets");
  const int64_t t1 = now_ns();

  auto iface = wait_point(*agent, "interface", "vm", "web", t1);
  ASSERT_TRUE(iface) << agent->stderr_text() << "\nlast line: " << agent->lines().back();
  EXPECT_EQ(iface->tags.at("bridge"), "service");
  ASSERT_EQ(rxp0, 1u);
  EXPECT_EQ(iface->i("vm_to_host_bytes"), int64_t(rx1));
  EXPECT_EQ(iface->i("vm_to_host_packets"), int64_t(rxp1));
  EXPECT_EQ(iface->i("host_to_vm_bytes"), int64_t(tx1));
  EXPECT_EQ(iface->i("host_to_vm_packets"), int64_t(txp1));
  EXPECT_EQ(rx1 - rx0, udp + tcp + icmp + other);
  EXPECT_EQ(iface->i("vm_to_host_mcast"), int64_t(ns.stat("vmmtap0", "multicast")));
  EXPECT_EQ(iface->i("host_to_vm_mcast"), 0);  // Linux counts no TX multicast
  EXPECT_EQ(iface->i("vm_to_host_errors"), 0);
  EXPECT_EQ(iface->i("vm_to_host_dropped"), 0);
  EXPECT_EQ(iface->i("host_to_vm_dropped"), 0);
  EXPECT_EQ(iface->i("mtu"), 1500);
  std::printf(
      "[ figures ] tap rx delta %llu B / %llu pkts, tx delta %llu B / %llu pkts; agent %lld/%lld, "
      "%lld/%lld\n",
      (unsigned long long)(rx1 - rx0), (unsigned long long)(rxp1 - rxp0),
      (unsigned long long)(tx1 - tx0), (unsigned long long)(txp1 - txp0),
      (long long)iface->i("vm_to_host_bytes"), (long long)iface->i("vm_to_host_packets"),
      (long long)iface->i("host_to_vm_bytes"), (long long)iface->i("host_to_vm_packets"));

  auto net = wait_point(*agent, "vm_net", "vm", "web", t1);
  ASSERT_TRUE(net);
  EXPECT_EQ(net->tags.at("ifname"), "vmmtap0");
  EXPECT_EQ(net->i("vm_to_host_udp_bytes"), int64_t(udp));
  EXPECT_EQ(net->i("vm_to_host_tcp_bytes"), int64_t(tcp));
  EXPECT_EQ(net->i("vm_to_host_icmp_bytes"), int64_t(icmp));
  EXPECT_EQ(net->i("vm_to_host_other_bytes"), int64_t(other));
  EXPECT_EQ(net->i("vm_to_host_new_connections"), 5);
  EXPECT_EQ(net->i("vm_to_host_mcast_packets"), 3);
  EXPECT_EQ(net->i("vm_to_host_bcast_packets"), 2);
  // Host -> VM: what the "VM" itself received, tallied by protocol.
  EXPECT_EQ(uint64_t(net->i("host_to_vm_udp_bytes")), tally["udp"]);
  EXPECT_EQ(uint64_t(net->i("host_to_vm_tcp_bytes")), tally["tcp"]);
  EXPECT_EQ(uint64_t(net->i("host_to_vm_icmp_bytes")), tally["icmp"]);
  EXPECT_EQ(uint64_t(net->i("host_to_vm_other_bytes")), tally["other"]);
  EXPECT_EQ(uint64_t(net->i("host_to_vm_new_connections")), tally["syns"]);
  EXPECT_GE(tally["syns"], 3u);
  EXPECT_EQ(tally["bytes"], tx1 - tx0);

  auto bridge = wait_point(*agent, "bridge", "bridge", "br0", t1);
  ASSERT_TRUE(bridge);
  EXPECT_EQ(bridge->i("taps"), 1);
  EXPECT_EQ(bridge->i("vm_to_host_bytes"), int64_t(rx1 - rx0));
  EXPECT_EQ(bridge->i("host_to_vm_bytes"), int64_t(tx1 - tx0));
  // The bridge device's own traffic: what the host stack exchanged with the VMs.
  EXPECT_EQ(bridge->i("host_rx_packets"), int64_t(brrx1 - brrx0));
  EXPECT_EQ(bridge->i("host_tx_packets"), int64_t(brtx1 - brtx0));

  agent->signal(SIGTERM);
  int st = agent->wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent->stderr_text();
  // Stopped, the agent left its programs counting for the next one; cleanup removes them.
  EXPECT_NE(vmscope_attachments(ns, programs), "");
  vmscope_cleanup(ns);
  EXPECT_EQ(attachments_after_exit(ns, programs), "");
}

INSTANTIATE_TEST_SUITE_P(AttachModes, TapAccounting, ::testing::Values("tcx", "clsact"));

// `interface` is the tap's own counters at every tick: traffic before the first agent,
// while it ran, after it was SIGKILLed and before the next one started is all there, as
// `ip -s link` shows it (issue 9's first report: 27,100 B reported for 27,154 sent).
TEST(TapAccounting, InterfaceEqualsKernelCountersAcrossSigkillAndRestart) {
  Bridge br;
  br.add_tap("vmmtap0");
  auto holder = br.hold("solo5-hvt", kSolo5Args);
  const Netns& ns = br.ns;
  // Multicast frames: the host answers none, so the tap's TX stays still between reads.
  const Mac all_hosts{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
  uint64_t sent = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i)
      inject(*holder, ipv4_frame(all_hosts, kVmMac, ip("10.99.0.2"), ip("224.0.0.1"), 17, 40));
    sent += n;
    ASSERT_TRUE(wait_stat(ns, "vmmtap0", "rx_packets", sent));
  };
  // The kernel's counters and the agent's first interface line stamped after reading them.
  auto expect_equal = [&](Child& agent, const char* when) {
    const uint64_t rx = ns.stat("vmmtap0", "rx_bytes"), rxp = ns.stat("vmmtap0", "rx_packets");
    const uint64_t tx = ns.stat("vmmtap0", "tx_bytes"), txp = ns.stat("vmmtap0", "tx_packets");
    auto p = wait_point(agent, "interface", "vm", "web", now_ns());
    ASSERT_TRUE(p) << when << ": " << agent.stderr_text();
    EXPECT_EQ(p->i("vm_to_host_bytes"), int64_t(rx)) << when;
    EXPECT_EQ(p->i("vm_to_host_packets"), int64_t(rxp)) << when;
    EXPECT_EQ(p->i("host_to_vm_bytes"), int64_t(tx)) << when;
    EXPECT_EQ(p->i("host_to_vm_packets"), int64_t(txp)) << when;
    std::printf("[ figures ] %s: tap rx %llu B / %llu pkts, tx %llu B; interface %lld B / %lld\n",
                when, (unsigned long long)rx, (unsigned long long)rxp, (unsigned long long)tx,
                (long long)p->i("vm_to_host_bytes"), (long long)p->i("vm_to_host_packets"));
  };

  send(1);  // before any agent
  auto agent = br.agent({});
  expect_equal(*agent, "first agent");
  send(5);
  expect_equal(*agent, "first agent, after traffic");
  agent->signal(SIGKILL);
  agent->wait(10s);
  send(7);  // no agent runs
  agent = br.agent({});
  expect_equal(*agent, "restarted agent");
  ASSERT_EQ(ns.stat("vmmtap0", "rx_packets"), 13u);
  agent->signal(SIGTERM);
  const int st = agent->wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent->stderr_text();
}

// Taps that appear while the agent runs are counted from then on; removed ones vanish.
TEST(TapLifecycle, NewTapsAttachWithinOneIntervalAndRemovedOnesDetach) {
  Bridge br;
  auto agent = br.agent({});
  ASSERT_TRUE(agent->wait_line([](const std::string&) { return false; }, 700ms) == std::nullopt);

  br.add_tap("vmmtap1");
  const int64_t t0 = now_ns();
  auto holder = br.hold("/usr/bin/qemu-system-x86_64",
                        {"-name", "guest=web2,debug-threads=on", "-netdev",
                         "tap,id=n0,ifname=vmmtap1,script=no,downscript=no", "-m", "64"});
  // A tap no process holds is still reported, named after itself.
  br.ns.must("ip tuntap add vmmtap9 mode tap");
  br.ns.must("ip link set vmmtap9 up");
  auto first = wait_point(*agent, "interface", "vm", "web2", t0, 2s);
  ASSERT_TRUE(first) << agent->stderr_text();
  const std::string programs = held_programs(agent->pid());
  EXPECT_LE(first->timestamp - t0, 1'000'000'000) << "not attached within one interval";
  EXPECT_EQ(first->tags.at("bridge"), "br0");  // not solo5: the master bridge
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "vmmtap9", t0, 2s));

  const Mac br_mac = mac_of(br.ns, "br0");
  for (int i = 0; i < 7; ++i)
    inject(*holder, ipv4_frame(br_mac, kVmMac, ip("10.99.0.2"), ip("10.99.0.1"), 17, 100));
  holder->close_stdin();
  ASSERT_TRUE(holder->wait_line([](const std::string& l) { return l.rfind("rx ", 0) == 0; }, 10s));
  const uint64_t rx = br.ns.stat("vmmtap1", "rx_bytes");
  const uint64_t rxp = br.ns.stat("vmmtap1", "rx_packets");
  auto p = wait_point(*agent, "interface", "vm", "web2", now_ns());
  ASSERT_TRUE(p);
  // The tap was born after the agent started: everything it ever counted is ours.
  EXPECT_EQ(p->i("vm_to_host_bytes"), int64_t(rx));
  EXPECT_EQ(p->i("vm_to_host_packets"), int64_t(rxp));
  EXPECT_EQ(rxp, 7u);

  holder.reset();
  br.ns.must("ip link del vmmtap1");
  const int64_t t_del = now_ns();
  // Two ticks later no line names the removed tap, and nothing is attached to it.
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "vmmtap9", t_del + 700'000'000));
  for (const auto& l : agent->lines()) {
    auto q = parse_point(l);
    if (q && q->timestamp > t_del + 400'000'000) {
      EXPECT_NE(q->tags["vm"], "web2") << l;
    }
  }

  agent->signal(SIGINT);
  int st = agent->wait(10s);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  vmscope_cleanup(br.ns);
  EXPECT_EQ(attachments_after_exit(br.ns, programs), "");
}

// However the agent stops, it keeps its own programs attached for its next run and touches
// nothing else; `vmscope cleanup` then removes only what vmscope attached: a foreign clsact
// filter on the same tap stays and keeps counting throughout.
struct StopCase {
  const char* attach;
  const char* how;  // "count", "SIGTERM", "SIGINT"
};

class StopAndCleanup : public ::testing::TestWithParam<StopCase> {};

TEST_P(StopAndCleanup, KeepsOnlyOursAndCleanupRemovesOnlyOurs) {
  const StopCase c = GetParam();
  Bridge br;
  br.add_tap("vmmtap0");
  auto holder = br.hold("solo5-hvt", kSolo5Args);
  // The foreign filter mirrors what it matches to a veth: its action counts packets.
  br.ns.must("ip link add fx0 type veth peer name fx1");
  br.ns.must("ip link set fx0 up");
  br.ns.must("ip link set fx1 up");
  br.ns.must("tc qdisc add dev vmmtap0 clsact");
  br.ns.must(
      "tc filter add dev vmmtap0 ingress pref 1 protocol all u32 match u32 0 0 "
      "action mirred egress mirror dev fx0");
  auto foreign_packets = [&] {
    std::string out = br.ns.capture("tc -s filter show dev vmmtap0 ingress");
    auto pos = out.find("Sent ");
    if (pos == std::string::npos) throw std::runtime_error("no stats: " + out);
    return std::stoull(out.substr(out.find("bytes ", pos) + 6));
  };

  std::vector<std::string> extra = {"--attach", c.attach};
  if (std::string(c.how) == "count") extra.insert(extra.end(), {"--count", "3"});
  auto agent = br.agent(extra);
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  const std::string programs = held_programs(agent->pid());
  EXPECT_NE(vmscope_attachments(br.ns, programs), "");
  const Mac br_mac = mac_of(br.ns, "br0");
  inject(*holder, ipv4_frame(br_mac, kVmMac, ip("10.99.0.2"), ip("10.99.0.1"), 17, 64));
  if (std::string(c.how) == "SIGTERM") agent->signal(SIGTERM);
  if (std::string(c.how) == "SIGINT") agent->signal(SIGINT);
  int st = agent->wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << "status " << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent->stderr_text();

  auto foreign_counts = [&](const char* when) {
    EXPECT_NE(br.ns.capture("tc filter show dev vmmtap0 ingress | grep u32"), "")
        << "foreign filter removed " << when;
    const uint64_t before = foreign_packets();
    for (int i = 0; i < 4; ++i)
      inject(*holder, ipv4_frame(br_mac, kVmMac, ip("10.99.0.2"), ip("10.99.0.1"), 17, 64));
    for (int i = 0; i < 50 && foreign_packets() < before + 4; ++i) usleep(20000);
    EXPECT_EQ(foreign_packets(), before + 4) << "foreign filter no longer counts " << when;
  };
  EXPECT_NE(vmscope_attachments(br.ns, programs), "") << "nothing kept for the next run";
  foreign_counts("after the stop");
  const std::string cleaned = vmscope_cleanup(br.ns);
  EXPECT_NE(cleaned.find("removed"), std::string::npos) << cleaned;
  EXPECT_EQ(attachments_after_exit(br.ns, programs), "");
  foreign_counts("after cleanup");
}

INSTANTIATE_TEST_SUITE_P(Stops, StopAndCleanup,
                         ::testing::Values(StopCase{"tcx", "count"}, StopCase{"tcx", "SIGTERM"},
                                           StopCase{"tcx", "SIGINT"}, StopCase{"clsact", "count"},
                                           StopCase{"clsact", "SIGTERM"},
                                           StopCase{"clsact", "SIGINT"}),
                         [](const auto& info) {
                           return std::string(info.param.attach) + "_" + info.param.how;
                         });

}  // namespace
}  // namespace vmscope::test
