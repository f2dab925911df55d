// Root tests: vmscope next to other tools' programs on the same tap (issue 11 item 7).
// A foreign tcx program attached before vmscope and one attached after it, or foreign
// clsact filters at priorities before and after vmscope's, keep their effect (they see
// every frame) and their order through vmscope's start, its restart (programs swapped in
// place) and `vmscope cleanup`, which removes only vmscope's.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>

#include <sstream>
#include <thread>

#include "bridge_env.h"
#include "common/unique_fd.h"
#include "foreign_count.skel.h"
#include "test_env.h"

namespace vmscope::test {
namespace {

constexpr int kTcxIngress = 46;  // BPF_TCX_INGRESS (Debian 12's headers predate tcx)

// Runs f on a thread inside ns (ifindexes, tcx attach and query are per namespace).
template <typename F>
void in_netns(const Netns& ns, F f) {
  std::thread t([&] {
    UniqueFd fd(open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() || setns(fd.get(), CLONE_NEWNET) != 0)
      throw std::runtime_error("enter netns " + ns.name());
    f();
  });
  t.join();
}

// A loaded foreign_count program and its tcx link on one device's ingress.
struct ForeignTcx {
  struct Deleter {
    void operator()(foreign_count_bpf* s) const { foreign_count_bpf__destroy(s); }
  };
  std::unique_ptr<foreign_count_bpf, Deleter> skel{foreign_count_bpf__open_and_load()};
  UniqueFd link;
  uint32_t prog_id = 0;

  void attach(const Netns& ns, const std::string& dev) {
    if (!skel) throw std::runtime_error("load foreign_count.bpf.o");
    const int prog = bpf_program__fd(skel->progs.foreign_count);
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    bpf_obj_get_info_by_fd(prog, &info, &len);
    prog_id = info.id;
    in_netns(ns, [&] {
      link.reset(bpf_link_create(prog, static_cast<int>(if_nametoindex(dev.c_str())),
                                 static_cast<bpf_attach_type>(kTcxIngress), nullptr));
    });
    if (!link.valid())
      throw std::runtime_error("tcx attach foreign_count: " + std::to_string(errno));
  }
  uint64_t seen() const {
    uint32_t key = 0;
    uint64_t n = 0;
    bpf_map_lookup_elem(bpf_map__fd(skel->maps.seen), &key, &n);
    return n;
  }
};

// The programs on dev's tcx ingress, in the order they run.
std::vector<uint32_t> tcx_ingress_order(const Netns& ns, const std::string& dev) {
  std::vector<uint32_t> ids(64);
  in_netns(ns, [&] {
    LIBBPF_OPTS(bpf_prog_query_opts, q);
    q.prog_ids = ids.data();
    q.prog_cnt = static_cast<uint32_t>(ids.size());
    if (bpf_prog_query_opts(static_cast<int>(if_nametoindex(dev.c_str())),
                            static_cast<bpf_attach_type>(kTcxIngress), &q) != 0)
      q.prog_cnt = 0;
    ids.resize(q.prog_cnt);
  });
  return ids;
}

// The id of the running agent's vs_tc_ingress.
uint32_t agent_ingress_id(Child& agent) {
  std::istringstream ids(held_programs(agent.pid()));
  for (std::string id; ids >> id;) {
    if (capture("bpftool prog show id " + id + " 2>/dev/null").find("name vs_tc_ingress") !=
        std::string::npos)
      return static_cast<uint32_t>(std::stoul(id));
  }
  return 0;
}

TEST(Coexistence, ForeignTcxProgramsKeepEffectAndOrder) {
  WebVm vm;
  Bridge& br = vm.br;
  const auto& frame = vm.frame;
  uint64_t frames = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i) inject(*vm.holder, frame);
    frames += n;
    ASSERT_TRUE(wait_stat(br.ns, "vmmtap0", "rx_packets", frames));
  };

  ForeignTcx before, after;
  before.attach(br.ns, "vmmtap0");  // another tool, there before vmscope
  auto agent = br.agent({"--attach", "tcx"});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  after.attach(br.ns, "vmmtap0");  // and one attached after it
  const uint32_t first = agent_ingress_id(*agent);
  ASSERT_NE(first, 0u);
  EXPECT_EQ(tcx_ingress_order(br.ns, "vmmtap0"),
            (std::vector<uint32_t>{before.prog_id, first, after.prog_id}));
  send(4);

  // A restart swaps vmscope's program in place: same position, both neighbours intact.
  agent->signal(SIGTERM);
  ASSERT_EQ(agent->wait(10s), 0) << agent->stderr_text();
  send(3);
  agent = br.agent({"--attach", "tcx"});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  const uint32_t second = agent_ingress_id(*agent);
  EXPECT_NE(second, first);
  EXPECT_EQ(tcx_ingress_order(br.ns, "vmmtap0"),
            (std::vector<uint32_t>{before.prog_id, second, after.prog_id}));
  send(2);
  auto net = wait_point(*agent, "vm_net", "vm", "web", now_ns());
  ASSERT_TRUE(net);
  EXPECT_EQ(net->i("vm_to_host_udp_bytes"), int64_t(frames * frame.size()));
  EXPECT_EQ(before.seen(), frames) << "the earlier program missed frames";
  EXPECT_EQ(after.seen(), frames) << "the later program missed frames";

  // Stopped and cleaned up: only the foreign programs remain, in their order, working.
  agent->signal(SIGTERM);
  ASSERT_EQ(agent->wait(10s), 0);
  vmscope_cleanup(br.ns);
  EXPECT_EQ(tcx_ingress_order(br.ns, "vmmtap0"),
            (std::vector<uint32_t>{before.prog_id, after.prog_id}));
  send(5);
  EXPECT_EQ(before.seen(), frames);
  EXPECT_EQ(after.seen(), frames);
  std::printf("[ figures ] %llu frames; foreign before/after saw %llu/%llu; vmscope ids %u -> %u\n",
              (unsigned long long)frames, (unsigned long long)before.seen(),
              (unsigned long long)after.seen(), first, second);
}

// clsact: foreign filters at a priority before vmscope's and one after it (each mirrors
// what it sees to a veth, whose counter is the effect), through start, restart, cleanup.
// The earlier one's verdict is "continue" (a verdict that ends classification would keep
// the later filters, vmscope's included, from seeing the frame: that is tc's order).
TEST(Coexistence, ForeignClsactFiltersKeepEffectAndOrder) {
  WebVm vm;
  Bridge& br = vm.br;
  const auto& frame = vm.frame;
  br.ns.must("ip link add fx0 type veth peer name fx1");
  br.ns.must("ip link add fy0 type veth peer name fy1");
  for (const char* d : {"fx0", "fx1", "fy0", "fy1"})
    br.ns.must(std::string("ip link set ") + d + " up");
  br.ns.must("tc qdisc add dev vmmtap0 clsact");
  br.ns.must(
      "tc filter add dev vmmtap0 ingress pref 1 protocol all u32 match u32 0 0 "
      "action mirred egress mirror dev fx0 continue");
  uint64_t frames = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i) inject(*vm.holder, frame);
    frames += n;
    ASSERT_TRUE(wait_stat(br.ns, "vmmtap0", "rx_packets", frames));
  };
  // Filter priorities on the tap's ingress, in the order tc runs them.
  auto prefs = [&] {
    return br.ns.capture(
        "tc filter show dev vmmtap0 ingress | awk '/pref/ && !seen[$5]++ {print $5}' | "
        "tr '\\n' ' '");
  };

  auto agent = br.agent({"--attach", "clsact"});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  br.ns.must(
      "tc filter add dev vmmtap0 ingress pref 60000 protocol all u32 match u32 0 0 "
      "action mirred egress mirror dev fy0");
  EXPECT_EQ(prefs(), "1 49374 60000 ");
  send(4);
  agent->signal(SIGTERM);
  ASSERT_EQ(agent->wait(10s), 0);
  send(3);
  agent = br.agent({"--attach", "clsact"});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  EXPECT_EQ(prefs(), "1 49374 60000 ");
  send(2);
  auto net = wait_point(*agent, "vm_net", "vm", "web", now_ns());
  ASSERT_TRUE(net);
  EXPECT_EQ(net->i("vm_to_host_udp_bytes"), int64_t(frames * frame.size()));
  agent->signal(SIGTERM);
  ASSERT_EQ(agent->wait(10s), 0);
  vmscope_cleanup(br.ns);
  EXPECT_EQ(prefs(), "1 60000 ");
  send(5);
  // Each mirror saw every frame since it was added (fy0's from the first 4 on).
  EXPECT_EQ(br.ns.stat("fx1", "rx_packets"), frames);
  EXPECT_EQ(br.ns.stat("fy1", "rx_packets"), frames);
}

}  // namespace
}  // namespace vmscope::test
