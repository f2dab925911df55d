// Root tests: per-VM CPU, faults and memory from the kernel must match /proc within one
// tick; VM starts and exits are reported at once; churn leaves no map entry behind.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/unique_fd.h"
#include "test_env.h"

namespace vmscope::test {
namespace {

// /proc/<pid>/stat of the whole process, the fields albatross-stats reads.
struct ProcStat {
  double utime_s = 0, stime_s = 0;
  int64_t minflt = 0, majflt = 0, vsize = 0, rss_pages = 0;
};

ProcStat read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream f(text.substr(text.rfind(')') + 2));
  std::vector<std::string> v{"", "", ""};  // fields 1-2 consumed, index = field number
  std::string x;
  while (f >> x) v.push_back(x);
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcStat s;
  s.minflt = std::stoll(v[10]);
  s.majflt = std::stoll(v[12]);
  s.utime_s = std::stod(v[14]) / hz;
  s.stime_s = std::stod(v[15]) / hz;
  s.vsize = std::stoll(v[23]);
  s.rss_pages = std::stoll(v[24]);
  return s;
}

int64_t statm_resident(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  int64_t size, resident;
  in >> size >> resident;
  return resident;
}

// Names of the BPF programs a process holds: its "anon_inode:bpf-prog" fds, identified by
// the prog_id in their fdinfo and named by the kernel.
std::set<std::string> held_programs(pid_t pid) {
  namespace fs = std::filesystem;
  std::set<std::string> names;
  const std::string base = "/proc/" + std::to_string(pid);
  for (const auto& e : fs::directory_iterator(base + "/fd")) {
    std::error_code ec;
    if (fs::read_symlink(e.path(), ec).string() != "anon_inode:bpf-prog") continue;
    std::ifstream in(base + "/fdinfo/" + e.path().filename().string());
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("prog_id:", 0) != 0) continue;
      UniqueFd fd(bpf_prog_get_fd_by_id(static_cast<uint32_t>(std::stoul(line.substr(8)))));
      bpf_prog_info info{};
      uint32_t len = sizeof(info);
      if (fd.valid() && bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0) names.insert(info.name);
    }
  }
  return names;
}

double f(const Point& p, const std::string& field) {
  return std::stod(p.fields.at(field));
}

TEST(ProcMetrics, MatchProcWithinOneTick) {
  Netns ns;
  auto vm = busy_vm("cpu1", {"BUSY_MB=48", "BUSY_THREADS=2"});
  auto agent = agent_in(ns);
  ASSERT_TRUE(wait_point(*agent, "resource_usage", {{"vm", "cpu1"}}, 0)) << agent->stderr_text();
  usleep(300000);

  for (int round = 0; round < 3; ++round) {
    const ProcStat a = read_stat(vm->pid());
    const int64_t resident_a = statm_resident(vm->pid());
    const int64_t t = now_ns();
    auto ru = wait_point(*agent, "resource_usage", {{"vm", "cpu1"}}, t);
    ASSERT_TRUE(ru) << agent->stderr_text();
    auto km = wait_point(*agent, "kinfo_mem", {{"vm", "cpu1"}}, t);
    ASSERT_TRUE(km);
    const ProcStat b = read_stat(vm->pid());
    const int64_t resident_b = statm_resident(vm->pid());

    // Counters of a running process lie between the /proc reads around the tick; /proc
    // truncates utime and stime to clock ticks each, hence two ticks of slack.
    const double tick = 2.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    const double cpu = f(*ru, "utime") + f(*ru, "stime");
    EXPECT_GE(cpu, a.utime_s + a.stime_s - tick);
    EXPECT_LE(cpu, b.utime_s + b.stime_s + tick);
    EXPECT_GE(ru->i("minflt"), a.minflt);
    EXPECT_LE(ru->i("minflt"), b.minflt);
    EXPECT_GE(ru->i("maxflt"), a.majflt);  // albatross' name for major faults
    EXPECT_LE(ru->i("maxflt"), b.majflt);
    EXPECT_GE(ru->i("minflt"), 48 * 256) << "48 MiB touched page by page";
    // Memory is stable once the helper is ready: equal, not just close.
    EXPECT_EQ(resident_a, resident_b);
    EXPECT_EQ(km->i("rss"), resident_a);
    EXPECT_EQ(ru->i("maxrss"), resident_a);
    EXPECT_EQ(km->i("vsize"), a.vsize);
    EXPECT_NEAR(double(km->i("runtime")) / 1e6, cpu, 1e-5);
    EXPECT_GT(f(*km, "uptime"), 0.5);
    std::printf(
        "[ figures ] cpu /proc %.2f..%.2f s, agent %.3f s; minflt %lld..%lld, agent %lld; "
        "rss %lld pages, agent %lld\n",
        a.utime_s + a.stime_s, b.utime_s + b.stime_s, cpu, (long long)a.minflt, (long long)b.minflt,
        (long long)ru->i("minflt"), (long long)resident_a, (long long)km->i("rss"));
  }
  auto self = wait_point(*agent, "vmscope", {}, now_ns());
  ASSERT_TRUE(self);
  EXPECT_GE(self->i("tracked_procs"), 1);
  EXPECT_EQ(self->i("proc_events_lost"), 0);
}

// A VM's forked children (crosvm's device processes, say) count into the VM.
TEST(ProcMetrics, ForkedChildrenCountIntoTheirVm) {
  Netns ns;
  auto agent = agent_in(ns);
  ASSERT_TRUE(wait_point(*agent, "vmscope", {}, 0)) << agent->stderr_text();
  auto vm = busy_vm("fam1", {"BUSY_MB=16", "BUSY_THREADS=1", "BUSY_CHILDREN=2"});
  std::vector<pid_t> pids = {vm->pid()};
  for (const auto& l : vm->lines())
    if (l.rfind("child ", 0) == 0) pids.push_back(std::stoi(l.substr(6)));
  ASSERT_EQ(pids.size(), 3u);
  usleep(1500000);  // children touch their memory too
  int64_t resident = 0, minflt = 0;
  for (pid_t p : pids) {
    resident += statm_resident(p);
    minflt += read_stat(p).minflt;
  }
  auto km = wait_point(*agent, "kinfo_mem", {{"vm", "fam1"}}, now_ns());
  auto ru = wait_point(*agent, "resource_usage", {{"vm", "fam1"}}, now_ns());
  ASSERT_TRUE(km && ru) << agent->stderr_text();
  EXPECT_EQ(km->i("rss"), resident);
  EXPECT_EQ(ru->i("minflt"), minflt);
  EXPECT_GE(km->i("rss"), 3 * 16 * 256) << "three processes with 16 MiB each";
  // Children have no lifecycle events of their own.
  int events = 0;
  for (const auto& l : agent->lines()) {
    auto p = parse_point(l);
    if (p && p->measurement == "vm_event" && p->tags["vm"] == "fam1") ++events;
  }
  EXPECT_EQ(events, 1) << "only the VM's start";
}

// net_slots counts the slots in use, not the drain range: a device that frees a slot
// below one still in use shrinks the count though not the range (the soak, bench/soak.sh,
// ended with 54 reported for 49 slots in use).
TEST(ProcMetrics, NetSlotsCountsTheSlotsInUse) {
  Netns ns;
  auto agent = agent_in(ns, "0.2");
  auto base = wait_point(*agent, "vmscope", {}, 0);
  ASSERT_TRUE(base) << agent->stderr_text();
  auto self_with_taps = [&](int64_t taps) {
    for (int i = 0; i < 50; ++i) {
      auto p = wait_point(*agent, "vmscope", {}, now_ns());
      if (p && p->i("taps") == taps) return p;
    }
    return std::optional<Point>();
  };
  // One after the other, so that the first holds the lower slot.
  ns.must("ip tuntap add mode tap name slotlo");
  ns.must("ip link set slotlo up");
  ASSERT_TRUE(self_with_taps(1)) << agent->stderr_text();
  ns.must("ip tuntap add mode tap name slothi");
  ns.must("ip link set slothi up");
  auto two = self_with_taps(2);
  ASSERT_TRUE(two) << agent->stderr_text();
  EXPECT_EQ(two->i("net_slots"), base->i("net_slots") + 2);
  ns.must("ip link del slotlo");
  auto one = self_with_taps(1);
  ASSERT_TRUE(one) << agent->stderr_text();
  EXPECT_EQ(one->i("net_slots"), base->i("net_slots") + 1);
  agent->signal(SIGTERM);
  EXPECT_EQ(agent->wait(10s), 0);
}

// With kernel.bpf_stats_enabled the self-metrics carry the run count and time of every
// program the agent loaded.
TEST(ProcMetrics, SelfMetricsReportProgramRuntimeWhenTheKernelCountsIt) {
  const std::string before = capture("sysctl -n kernel.bpf_stats_enabled");
  must("sysctl -qw kernel.bpf_stats_enabled=1");
  struct Restore {
    std::string v;
    ~Restore() { sh("sysctl -qw kernel.bpf_stats_enabled=" + v); }
  } restore{before.substr(0, before.find('\n'))};
  Netns ns;
  auto agent = agent_in(ns);
  ASSERT_TRUE(wait_point(*agent, "vmscope", {}, 0)) << agent->stderr_text();
  auto vm = busy_vm("stat1", {"BUSY_MB=4", "BUSY_THREADS=1"});  // an exec the agent sees
  ASSERT_TRUE(wait_point(*agent, "resource_usage", {{"vm", "stat1"}}, 0)) << agent->stderr_text();
  auto self = wait_point(*agent, "vmscope", {}, now_ns());
  ASSERT_TRUE(self);
  EXPECT_GT(self->i("vs_tasks_run_count"), 0) << "the iterator ran for the tracked tasks";
  EXPECT_GT(self->i("vs_tasks_run_time_ns"), 0);
  EXPECT_GE(self->i("vs_exec_run_count"), 1) << "busy_vm was exec'd while the agent ran";
  EXPECT_TRUE(self->fields.count("vs_exit_run_time_ns"));
  EXPECT_TRUE(self->fields.count("vs_tc_ingress_run_count"));
  EXPECT_GT(self->i("tick_ns"), 0);
  // Exactly the programs the agent holds: none missing (vs_fork once was), none extra.
  std::set<std::string> reported;
  const std::string suffix = "_run_count";
  for (const auto& [key, value] : self->fields)
    if (key.size() > suffix.size() && key.ends_with(suffix))
      reported.insert(key.substr(0, key.size() - suffix.size()));
  const std::set<std::string> held = held_programs(agent->pid());
  for (const char* name : {"vs_tc_ingress", "vs_tc_egress", "vs_exec", "vs_fork", "vs_exit"})
    EXPECT_TRUE(held.count(name)) << name << " is loaded by every agent";
  EXPECT_EQ(reported, held);
  EXPECT_EQ(self->i("net_slots_max"), 8192);
  EXPECT_EQ(self->i("tracked_procs_max"), 16384);
}

TEST(ProcMetrics, StartAndExitEventsAtOnce) {
  Netns ns;
  auto agent = agent_in(ns);
  ASSERT_TRUE(wait_point(*agent, "vmscope", {}, 0)) << agent->stderr_text();

  const int64_t t0 = now_ns();
  auto vm = busy_vm("late1");
  auto start = wait_point(*agent, "vm_event", {{"vm", "late1"}, {"event", "start"}}, t0, 2s);
  ASSERT_TRUE(start) << agent->stderr_text();
  EXPECT_EQ(start->i("pid"), vm->pid());
  EXPECT_EQ(start->fields.at("launcher"), "\"qemu\"");
  EXPECT_LT(start->timestamp - t0, 500'000'000);
  ASSERT_TRUE(wait_point(*agent, "resource_usage", {{"vm", "late1"}}, t0, 2s))
      << "a VM started after the agent appears within one interval";

  const int64_t t1 = now_ns();
  vm->signal(SIGKILL);
  vm->wait(5s);
  auto exit = wait_point(*agent, "vm_event", {{"vm", "late1"}, {"event", "exit"}}, t1, 2s);
  ASSERT_TRUE(exit) << agent->stderr_text();
  EXPECT_EQ(exit->i("signal"), 9);
  EXPECT_EQ(exit->i("pid"), vm->pid());
  EXPECT_GT(f(*exit, "lifetime"), 0.0);
  EXPECT_GT(exit->i("minflt"), 0);

  // A normal exit carries its status.
  auto quitter = busy_vm("quit3", {"BUSY_EXIT_MS=800", "BUSY_EXIT_CODE=3"});
  auto q = wait_point(*agent, "vm_event", {{"vm", "quit3"}, {"event", "exit"}}, t1, 5s);
  ASSERT_TRUE(q) << agent->stderr_text();
  EXPECT_EQ(q->i("exit_code"), 3);
  EXPECT_EQ(q->i("signal"), 0);

  usleep(700000);
  int exits = 0;
  for (const auto& l : agent->lines()) {
    auto p = parse_point(l);
    if (p && p->measurement == "vm_event" && p->tags["vm"] == "late1" && p->tags["event"] == "exit")
      ++exits;
  }
  EXPECT_EQ(exits, 1) << "exactly one exit event";
  agent->signal(SIGTERM);
  EXPECT_EQ(agent->wait(10s), 0);
}

// Exec events carry as much of the argv as the process has (bpf/vmscope.h,
// VS_PROC_EVENT_HEAD_LEN): a command line longer than an event holds arrives in a record of
// the largest size, and its VM is still named, started and exited.
TEST(ProcMetrics, AVmWithACommandLineLongerThanAnEventIsReported) {
  Netns ns;
  auto agent = agent_in(ns);
  ASSERT_TRUE(wait_point(*agent, "vmscope", {}, 0)) << agent->stderr_text();
  std::vector<std::string> padding;
  for (int i = 0; i < 60; ++i)  // 60 x 40 bytes: past VS_ARGS_LEN
    padding.push_back("-device virtio-blk-pci,drive=disk" + std::to_string(1000 + i));
  const int64_t t0 = now_ns();
  auto vm = busy_vm("long1", {"BUSY_EXIT_MS=600"}, padding);
  auto start = wait_point(*agent, "vm_event", {{"vm", "long1"}, {"event", "start"}}, t0, 2s);
  ASSERT_TRUE(start) << agent->stderr_text();
  EXPECT_EQ(start->i("pid"), vm->pid());
  auto exit = wait_point(*agent, "vm_event", {{"vm", "long1"}, {"event", "exit"}}, t0, 5s);
  ASSERT_TRUE(exit) << agent->stderr_text();
  EXPECT_EQ(exit->i("exit_code"), 0);
  auto self = wait_point(*agent, "vmscope", {}, now_ns());
  ASSERT_TRUE(self);
  EXPECT_EQ(self->i("proc_events_lost"), 0);
}

// 200 short-lived "VMs" holding taps: afterwards every map is back to its baseline.
TEST(ProcMetrics, ChurnLeavesNoEntriesBehind) {
  Netns ns;
  auto agent = agent_in(ns, "0.2");
  auto base = wait_point(*agent, "vmscope", {}, 0);
  ASSERT_TRUE(base) << agent->stderr_text();
  const int64_t t0 = now_ns();
  constexpr int kVms = 200, kBatch = 20;
  for (int b = 0; b < kVms / kBatch; ++b) {
    std::vector<std::unique_ptr<Child>> batch;
    for (int i = 0; i < kBatch; ++i) {
      int n = b * kBatch + i;
      std::string tap = "vmmtap" + std::to_string(n);
      batch.push_back(std::make_unique<Child>(
          helper_bin("tap_holder"),
          std::vector<std::string>{"--net:service=" + tap, "--",
                                   "/run/albatross/churn:c" + std::to_string(n) + ".img",
                                   "--name=c" + std::to_string(n)},
          SpawnOptions{ns.name(), "solo5-hvt", {}, true}));
    }
    for (auto& c : batch)
      ASSERT_TRUE(c->wait_line([](const std::string& l) { return l.rfind("ready", 0) == 0; }, 5s));
    usleep(250000);  // let some of them live through a tick
  }                  // each batch is SIGKILLed here
  usleep(1500000);
  auto after = wait_point(*agent, "vmscope", {}, now_ns());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->i("tracked_procs"), base->i("tracked_procs"));
  EXPECT_EQ(after->i("net_slots"), base->i("net_slots"));
  EXPECT_EQ(after->i("taps"), 0);
  EXPECT_EQ(after->i("proc_events_lost"), 0);
  // The kernel's own view of the map, not just the agent's bookkeeping.
  // This agent's map: the map ids its fds hold (fdinfo "map_id:") named "tracked".
  std::string id = capture("for f in /proc/" + std::to_string(agent->pid()) +
                           "/fdinfo/*; do awk '/^map_id:/{print $2}' $f; done | sort -u | "
                           "while read m; do bpftool map show id $m | grep -q 'name tracked ' && "
                           "printf %s $m; done; true");
  ASSERT_FALSE(id.empty());
  std::string entries =
      capture("bpftool -j map dump id " + id + " | grep -o '\"key\":\\[' | wc -l");
  EXPECT_EQ(std::stoi(entries), base->i("tracked_procs"))
      << capture("bpftool -j map dump id " + id) << "\n"
      << capture("ps -eo pid,stat,args | grep -v ' ps ' | tail -30");

  std::map<std::string, int> starts, exits;
  for (const auto& l : agent->lines()) {
    auto p = parse_point(l);
    if (!p || p->measurement != "vm_event" || p->timestamp < t0) continue;
    const std::string& vm = p->tags["vm"];
    if (vm.size() < 2 || vm[0] != 'c' || !std::isdigit(vm[1])) continue;  // other VMs on the host
    (p->tags["event"] == "start" ? starts : exits)[vm]++;
  }
  EXPECT_EQ(starts.size(), size_t(kVms));
  EXPECT_EQ(exits.size(), size_t(kVms));
  for (int n = 0; n < kVms; ++n) {
    std::string vm = "c";  // not "c" + std::to_string(n): GCC 12 -O3 warns (-Wrestrict) on it
    vm += std::to_string(n);
    EXPECT_EQ(starts[vm], 1) << vm << ": start events";
    EXPECT_EQ(exits[vm], 1) << vm << ": exit events";
    if (exits[vm] != 1 || starts[vm] != 1)
      for (const auto& l : agent->lines())
        if (l.find("vm=" + vm + " ") != std::string::npos && l.rfind("vm_event", 0) == 0)
          std::printf("  %s\n", l.c_str());
  }
  agent->signal(SIGTERM);
  EXPECT_EQ(agent->wait(10s), 0);
}

}  // namespace
}  // namespace vmscope::test
