// Root tests of the kernel state an agent keeps across its restarts (issue 9): counts
// made while no agent runs are not lost, a restarted or upgraded agent continues them
// with no packet missed or counted twice, maps of another layout are dropped with one
// warning, and `vmscope cleanup` leaves nothing behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge_env.h"
#include "test_env.h"

namespace vmscope::test {
namespace {

std::string pin_dir(const Netns& ns) {
  return "/sys/fs/bpf/vmscope/net-" + trim(capture("stat -L -c %i /run/netns/" + ns.name()));
}

// The tag of the vs_tc_ingress program among `programs` (prog ids an agent held).
std::string ingress_tag(const std::string& programs) {
  return trim(capture("for id in " + programs +
                      "; do bpftool prog show id $id 2>/dev/null; done | awk '/name "
                      "vs_tc_ingress/{for(i=1;i<=NF;i++) if($i==\"tag\") print $(i+1)}' | "
                      "head -1"));
}

// The agent's latest own line (the vmscope measurement), once it wrote one.
std::optional<Point> self_point(Child& agent) {
  if (!agent.wait_line([](const std::string& l) { return l.rfind("vmscope ", 0) == 0; }, 5s))
    return std::nullopt;
  std::optional<Point> last;
  for (const auto& l : agent.lines())
    if (l.rfind("vmscope ", 0) == 0) last = parse_point(l);
  return last;
}

struct RestartCase {
  const char* attach;
  int stop_signal;
};

class KeptCounters : public ::testing::TestWithParam<RestartCase> {};

// Traffic while the agent runs, while none runs (after SIGKILL, or SIGTERM as systemd
// stops it) and after its restart: vm_net and bridge equal all of it, as the tap counted it.
TEST_P(KeptCounters, ContinueAcrossStopTrafficAndRestart) {
  const RestartCase c = GetParam();
  WebVm vm;
  Bridge& br = vm.br;
  const Netns& ns = br.ns;
  const auto& frame = vm.frame;
  uint64_t frames = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i) inject(*vm.holder, frame);
    frames += n;
    ASSERT_TRUE(wait_stat(ns, "vmmtap0", "rx_packets", frames));
  };
  auto expect_all_counted = [&](Child& agent, const char* when) {
    const int64_t rx = int64_t(ns.stat("vmmtap0", "rx_bytes"));
    ASSERT_EQ(rx, int64_t(frames * frame.size())) << when;
    auto net = wait_point(agent, "vm_net", "vm", "web", now_ns());
    ASSERT_TRUE(net) << when << ": " << agent.stderr_text();
    EXPECT_EQ(net->i("vm_to_host_udp_bytes"), rx) << when;
    auto bridge = wait_point(agent, "bridge", "bridge", "br0", now_ns());
    ASSERT_TRUE(bridge) << when;
    EXPECT_EQ(bridge->i("vm_to_host_bytes"), rx) << when;
    std::printf("[ figures ] %s: %llu frames, tap rx %lld B, vm_net udp %lld B, bridge %lld B\n",
                when, (unsigned long long)frames, (long long)rx,
                (long long)net->i("vm_to_host_udp_bytes"),
                (long long)bridge->i("vm_to_host_bytes"));
  };

  auto agent = br.agent({"--attach", c.attach});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  send(5);
  expect_all_counted(*agent, "first agent");
  agent->signal(c.stop_signal);
  agent->wait(10s);
  send(7);  // no agent runs: the kept programs count
  agent = br.agent({"--attach", c.attach});
  expect_all_counted(*agent, "restarted agent");
  auto self = self_point(*agent);
  ASSERT_TRUE(self);
  EXPECT_EQ(self->i("net_continued"), 2) << "the tap and the bridge";
  send(3);
  expect_all_counted(*agent, "restarted agent, after more traffic");
  EXPECT_EQ(agent->stderr_text().find("cannot be continued"), std::string::npos)
      << agent->stderr_text();
  agent->signal(SIGTERM);
  const int st = agent->wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent->stderr_text();
}

INSTANTIATE_TEST_SUITE_P(Restarts, KeptCounters,
                         ::testing::Values(RestartCase{"tcx", SIGKILL}, RestartCase{"tcx", SIGTERM},
                                           RestartCase{"clsact", SIGKILL},
                                           RestartCase{"clsact", SIGTERM}),
                         [](const auto& info) {
                           return std::string(info.param.attach) + "_" +
                                  (info.param.stop_signal == SIGKILL ? "SIGKILL" : "SIGTERM");
                         });

class Upgrade : public ::testing::TestWithParam<std::string> {};

// A new build whose program differs takes over from a stopped agent while traffic flows
// throughout: its program is swapped in atomically, and counted equals sent. Then
// `vmscope cleanup` leaves no pin, link, filter or program.
TEST_P(Upgrade, ToADifferingProgramWithTrafficThroughout) {
  WebVm vm;
  Bridge& br = vm.br;
  const Netns& ns = br.ns;
  const auto& frame = vm.frame;

  auto old_agent = br.agent({"--attach", GetParam()});
  ASSERT_TRUE(wait_point(*old_agent, "interface", "vm", "web", 0)) << old_agent->stderr_text();
  const std::string old_tag = ingress_tag(held_programs(old_agent->pid()));

  PacedTraffic traffic(*vm.holder, frame);
  traffic.start();
  usleep(300'000);
  old_agent->signal(SIGTERM);  // as systemctl restart does after the package replaced it
  ASSERT_EQ(old_agent->wait(10s), 0) << old_agent->stderr_text();
  auto new_agent = br.agent({"--attach", GetParam()}, vmscope_variant_bin());
  ASSERT_TRUE(wait_point(*new_agent, "vm_net", "vm", "web", 0)) << new_agent->stderr_text();
  usleep(300'000);
  traffic.stop();
  const uint64_t sent = traffic.sent();
  ASSERT_TRUE(wait_stat(ns, "vmmtap0", "rx_packets", sent));

  const std::string new_programs = held_programs(new_agent->pid());
  const std::string new_tag = ingress_tag(new_programs);
  EXPECT_NE(old_tag, "");
  EXPECT_NE(new_tag, "");
  EXPECT_NE(old_tag, new_tag) << "the variant's program is not the one counting";

  const int64_t rx = int64_t(ns.stat("vmmtap0", "rx_bytes"));
  EXPECT_EQ(rx, int64_t(sent * frame.size()));
  auto net = wait_point(*new_agent, "vm_net", "vm", "web", now_ns());
  ASSERT_TRUE(net) << new_agent->stderr_text();
  EXPECT_EQ(net->i("vm_to_host_udp_bytes"), rx);
  std::printf(
      "[ figures ] %s upgrade: %llu frames sent, tap rx %lld B, vm_net udp %lld B, "
      "program tag %s -> %s\n",
      GetParam().c_str(), (unsigned long long)sent, (long long)rx,
      (long long)net->i("vm_to_host_udp_bytes"), old_tag.c_str(), new_tag.c_str());

  new_agent->signal(SIGTERM);
  ASSERT_EQ(new_agent->wait(10s), 0) << new_agent->stderr_text();
  ASSERT_EQ(sh("test -d " + pin_dir(ns)), 0) << "nothing kept";
  const std::string cleaned = vmscope_cleanup(ns);
  EXPECT_NE(cleaned.find("this network namespace: removed"), std::string::npos) << cleaned;
  EXPECT_NE(sh("test -e " + pin_dir(ns)), 0) << "pins left: " << capture("ls " + pin_dir(ns));
  EXPECT_EQ(attachments_after_exit(ns, new_programs), "");
  EXPECT_EQ(ns.capture("tc filter show dev vmmtap0 ingress"), "");
  EXPECT_EQ(ns.capture("tc filter show dev vmmtap0 egress"), "");
}

INSTANTIATE_TEST_SUITE_P(AttachModes, Upgrade, ::testing::Values("tcx", "clsact"));

class LayoutUpgrade : public ::testing::TestWithParam<std::string> {};

// Upgrades between builds whose kept maps differ in layout (vmscope_layout_variant: a
// smaller service_pending table), and back, with traffic throughout, then a SIGKILL
// restart: the old maps' counts are carried over each time, never reset, and counted
// equals sent at every step, in vm_net and bridge alike.
TEST_P(LayoutUpgrade, CarriesTheCountsOverWithTrafficThroughout) {
  WebVm vm;
  Bridge& br = vm.br;
  const Netns& ns = br.ns;
  const auto& frame = vm.frame;
  // From when the first agent counts (the tap's counters then hold only frames vmscope saw).
  PacedTraffic traffic(*vm.holder, frame);

  // Counted equals sent once the traffic pauses; then it resumes.
  auto expect_all_counted = [&](Child& agent, const char* when) {
    traffic.stop();
    const uint64_t sent = traffic.sent();
    ASSERT_TRUE(wait_stat(ns, "vmmtap0", "rx_packets", sent));
    const int64_t rx = int64_t(ns.stat("vmmtap0", "rx_bytes"));
    ASSERT_EQ(rx, int64_t(sent * frame.size())) << when;
    auto net = wait_point(agent, "vm_net", "vm", "web", now_ns());
    ASSERT_TRUE(net) << when << ": " << agent.stderr_text();
    EXPECT_EQ(net->i("vm_to_host_udp_bytes"), rx) << when << ": " << agent.stderr_text();
    auto bridge = wait_point(agent, "bridge", "bridge", "br0", now_ns());
    ASSERT_TRUE(bridge) << when;
    EXPECT_EQ(bridge->i("vm_to_host_bytes"), rx) << when;
    std::printf(
        "[ figures ] %s, %s: %llu frames, tap rx %lld B, vm_net udp %lld B, bridge %lld B\n",
        GetParam().c_str(), when, (unsigned long long)sent, (long long)rx,
        (long long)net->i("vm_to_host_udp_bytes"), (long long)bridge->i("vm_to_host_bytes"));
    traffic.start();
  };
  auto expect_migrated = [&](Child& agent, const char* when) {
    auto self = self_point(agent);
    ASSERT_TRUE(self) << when << ": " << agent.stderr_text();
    EXPECT_EQ(self->i("kept_state_migrations"), 1) << when;
    EXPECT_EQ(self->i("kept_state_resets"), 0) << when;
    EXPECT_NE(agent.stderr_text().find("carrying the counts of 2 devices over"), std::string::npos)
        << when << ": " << agent.stderr_text();
    EXPECT_EQ(agent.stderr_text().find("cannot be"), std::string::npos) << agent.stderr_text();
  };
  auto restart = [&](std::unique_ptr<Child>& agent, int sig, const std::string& bin) {
    usleep(300'000);  // traffic while the old agent still runs
    agent->signal(sig);
    agent->wait(10s);
    usleep(200'000);  // and while none runs
    agent = br.agent({"--attach", GetParam()}, bin);
    ASSERT_TRUE(wait_point(*agent, "vm_net", "vm", "web", 0)) << agent->stderr_text();
    usleep(1'500'000);  // past the harvest of the old maps (a tick after the swap)
  };

  auto agent = br.agent({"--attach", GetParam()});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  traffic.start();
  restart(agent, SIGTERM, vmscope_layout_variant_bin());
  expect_migrated(*agent, "upgraded to another layout");
  expect_all_counted(*agent, "upgraded to another layout");
  restart(agent, SIGTERM, vmscope_bin());
  expect_migrated(*agent, "back to the first layout");
  expect_all_counted(*agent, "back to the first layout");
  restart(agent, SIGKILL, vmscope_bin());
  auto self = self_point(*agent);
  ASSERT_TRUE(self);
  EXPECT_EQ(self->i("kept_state_migrations"), 0) << "the same layout: adopted";
  EXPECT_EQ(self->i("net_continued"), 2);
  expect_all_counted(*agent, "restarted after SIGKILL");
  traffic.stop();
  agent->signal(SIGTERM);
  EXPECT_EQ(agent->wait(10s), 0) << agent->stderr_text();
  vmscope_cleanup(ns);
  EXPECT_NE(sh("test -e " + pin_dir(ns)), 0) << "pins left: " << capture("ls " + pin_dir(ns));
}

INSTANTIATE_TEST_SUITE_P(AttachModes, LayoutUpgrade, ::testing::Values("tcx", "clsact"));

// Kept maps that cannot be read (an unknown record) are dropped: one warning, the reset
// counted in the self-metrics, counting from zero.
TEST(KeptLayout, AnUnreadableLayoutIsResetWithOneWarning) {
  WebVm vm;
  Bridge& br = vm.br;
  const auto& frame = vm.frame;
  auto agent = br.agent({});
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web", 0)) << agent->stderr_text();
  for (int i = 0; i < 4; ++i) inject(*vm.holder, frame);
  ASSERT_TRUE(wait_stat(br.ns, "vmmtap0", "rx_packets", 4));
  agent->signal(SIGTERM);
  ASSERT_EQ(agent->wait(10s), 0);
  // A record of the first form (revision 1) of another build: nothing says what its maps
  // hold.
  const std::string layout = pin_dir(br.ns) + "/layout";
  must("rm " + layout + " && bpftool map create " + layout +
       " type array key 4 value 16 entries 1 name vs_kept_layout");
  must("bpftool map update pinned " + layout +
       " key 0 0 0 0 value 1 2 3 4 5 6 7 8 0 0 0 0 1 0 0 0");

  agent = br.agent({});
  auto self = self_point(*agent);
  ASSERT_TRUE(self) << agent->stderr_text();
  EXPECT_EQ(self->i("kept_state_resets"), 1);
  EXPECT_EQ(self->i("net_continued"), 0);
  const std::string err = agent->stderr_text();
  size_t first = err.find("cannot be continued");
  ASSERT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("cannot be continued", first + 1), std::string::npos) << "warned twice";
  for (int i = 0; i < 3; ++i) inject(*vm.holder, frame);
  ASSERT_TRUE(wait_stat(br.ns, "vmmtap0", "rx_packets", 7));
  auto net = wait_point(*agent, "vm_net", "vm", "web", now_ns());
  ASSERT_TRUE(net);
  EXPECT_EQ(net->i("vm_to_host_udp_bytes"), int64_t(3 * frame.size())) << "not counted from zero";
  agent->signal(SIGTERM);
  EXPECT_EQ(agent->wait(10s), 0);
}

}  // namespace
}  // namespace vmscope::test
