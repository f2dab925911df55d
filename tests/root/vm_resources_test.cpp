// Root test with a real VM: per-VM resource figures of a qemu (TCG) guest against /proc.
// The agent runs first; then the guest boots (-name guest=res1). The test checks:
//  - a start event with qemu's pid, and resource lines from the first tick after it;
//  - at several ticks, each figure against /proc read right before and right after that
//    tick: memory exactly (a tick during which statm moved is retried, never tolerated),
//    counters between the two reads;
//  - counters never go down from tick to tick;
//  - after SIGKILL, one exit event (signal 9, qemu's pid) within 1 s and no resource line
//    for the VM after it.
//
// Counters are compared with sums over /proc/<pid>/task/*: /proc/<pid>/status shows the
// context switches of the main thread only (printed as a figure, not compared). The
// host downloads the guest's blob in a loop during the first ticks, so the counters move
// inside the bracket; ticks after that, with the guest idle, serve the memory
// comparisons that the load spoiled.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test::vm_resources {
namespace {

namespace fs = std::filesystem;

const std::string kVm = "res1";
const std::string kTap = "vmmtap0";
const std::string kHostAddr = "10.99.7.1";
const std::string kVmAddr = "10.99.7.2";
constexpr double kInterval = 0.5;
constexpr int kRounds = 5;            // bracketed ticks checked under load
constexpr int kMemoryRounds = 3;      // ticks with memory that did not move (any load)
constexpr int kMaxRounds = 16;        // ticks tried before giving up
constexpr double kStartSlack = 0.05;  // scheduling slack on "within one interval", s

double since_s(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The host downloads the guest's blob in a loop until stopped: the guest's CPU, faults
// and context switches move while ticks are compared.
class Load {
 public:
  Load(const Netns& ns, const std::string& dir) : stop_(dir + "/load.stop") {
    const std::string loop = "while [ ! -e " + shq(stop_) +
                             " ]; do curl -s -m 2 -o /dev/null http://" + kVmAddr +
                             "/blob || sleep 0.1; done";
    child_ = std::make_unique<Child>("/bin/sh", std::vector<std::string>{"-c", loop},
                                     SpawnOptions{ns.name(), "", {}, false});
  }
  ~Load() { stop(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;
  void stop() {
    if (!child_) return;
    std::ofstream(stop_).put('\n');
    if (child_->wait(5s) == -1) child_->signal(SIGKILL);
    child_.reset();
  }

 private:
  std::string stop_;
  std::unique_ptr<Child> child_;
};

// ---- /proc of the qemu process ----------------------------------------------------------

// Fields after "(comm) ", indexed by field number (1-based as in proc(5)).
std::vector<std::string> stat_fields(const std::string& path) {
  const std::string text = read_text(path);
  const auto rparen = text.rfind(')');
  if (rparen == std::string::npos) return {};
  std::istringstream in(text.substr(rparen + 2));
  std::vector<std::string> v{"", "", ""};
  for (std::string x; in >> x;) v.push_back(x);
  return v.size() > 22 ? v : std::vector<std::string>{};
}

int64_t status_field(const std::string& text, const std::string& key) {
  const auto at = text.find("\n" + key + ":");
  if (at == std::string::npos) throw std::runtime_error("no " + key + " in status");
  return std::stoll(text.substr(at + key.size() + 2));
}

struct ProcView {
  std::set<int> tids;
  // Sums over /proc/<pid>/task/*: stat fields 10, 12, 14+15 (clock ticks), status.
  int64_t minflt = 0, majflt = 0, cpu_ticks = 0, ctxsw = 0;
  int64_t runtime_ns = 0;    // sum of schedstat field 1: exact, not truncated to ticks
  int64_t leader_ctxsw = 0;  // /proc/<pid>/status: the main thread only
  // /proc/<pid>/stat of the whole process (includes exited threads).
  int64_t whole_minflt = 0, whole_majflt = 0, start_ticks = 0;
  // /proc/<pid>/statm: size resident shared text lib data dt (pages)
  std::vector<int64_t> statm;
  int64_t boottime_ns = 0;
};

ProcView read_proc(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  ProcView v;
  {
    std::ifstream in(dir + "/statm");
    for (int64_t x; in >> x;) v.statm.push_back(x);
    if (v.statm.size() != 7) throw std::runtime_error("cannot read " + dir + "/statm");
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir + "/task", ec)) {
    const auto f = stat_fields(e.path().string() + "/stat");
    const std::string status = read_text(e.path().string() + "/status");
    const std::string sched = read_text(e.path().string() + "/schedstat");
    if (f.empty() || status.empty() || sched.empty()) continue;  // gone: tids tell
    v.runtime_ns += std::stoll(sched);
    v.tids.insert(std::stoi(e.path().filename().string()));
    v.minflt += std::stoll(f[10]);
    v.majflt += std::stoll(f[12]);
    v.cpu_ticks += std::stoll(f[14]) + std::stoll(f[15]);
    v.ctxsw += status_field(status, "voluntary_ctxt_switches") +
               status_field(status, "nonvoluntary_ctxt_switches");
  }
  if (ec || v.tids.empty()) throw std::runtime_error("cannot read " + dir + "/task");
  const std::string status = read_text(dir + "/status");
  v.leader_ctxsw = status_field(status, "voluntary_ctxt_switches") +
                   status_field(status, "nonvoluntary_ctxt_switches");
  const auto w = stat_fields(dir + "/stat");
  if (w.empty()) throw std::runtime_error("cannot read " + dir + "/stat");
  v.whole_minflt = std::stoll(w[10]);
  v.whole_majflt = std::stoll(w[12]);
  v.start_ticks = std::stoll(w[22]);
  v.boottime_ns = clock_ns(CLOCK_BOOTTIME);
  return v;
}

// Alive and not a zombie.
bool running(pid_t pid) {
  const auto f = stat_fields("/proc/" + std::to_string(pid) + "/stat");
  return !f.empty() && f[3] != "Z" && f[3] != "X";
}

// ---- agent output ----------------------------------------------------------------------

// Lines of other measurements may hold names parse_point does not handle: not ours.
std::optional<Point> point_of(const std::string& line) {
  try {
    return parse_point(line);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool is(const std::optional<Point>& p, const std::string& measurement) {
  return p && p->measurement == measurement && p->tags.count("vm") && p->tags.at("vm") == kVm;
}

std::optional<Point> wait_for(Child& agent, const std::function<bool(const Point&)>& pred,
                              std::chrono::milliseconds timeout) {
  auto line = agent.wait_line(
      [&](const std::string& l) {
        auto p = point_of(l);
        return p && pred(*p);
      },
      timeout);
  if (!line) return std::nullopt;
  return point_of(*line);
}

double fl(const Point& p, const std::string& field) {
  return std::stod(p.fields.at(field));
}
double cpu_of(const Point& ru) {
  return fl(ru, "utime") + fl(ru, "stime");
}
int64_t ctxsw_of(const Point& ru) {
  return ru.i("nvcsw") + ru.i("nivcsw");
}

std::string vm_lines(Child& agent) {
  std::string out;
  for (const auto& l : agent.lines())
    if (l.find("vm=" + kVm) != std::string::npos) out += "  " + l + "\n";
  return out;
}

TEST(RealVmResources, FiguresMatchProcAroundTicksAndExitIsReportedOnce) {
  const auto t_begin = std::chrono::steady_clock::now();
  vm_image();  // a build failure is reported as such, before anything runs
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));

  TempDir tmp("vmscope-vm-res");
  Netns ns;
  ns.must("ip tuntap add " + kTap + " mode tap");
  ns.must("ip addr add " + kHostAddr + "/24 dev " + kTap);
  ns.must("ip link set " + kTap + " up");

  // 1. The agent first, then the VM.
  auto agent = std::make_unique<Child>(
      vmscope_bin(), std::vector<std::string>{"run", "--interval", "0.5", "--output", "-"},
      SpawnOptions{ns.name(), "", {}, false});
  ASSERT_TRUE(wait_for(
      *agent, [](const Point& p) { return p.measurement == "vmscope"; }, 10s))
      << "the agent wrote no tick\n"
      << agent->stderr_text();

  const int64_t t_boot = now_ns();
  Vm vm(ns, tmp.path, kTap, kVm, kVmAddr + "/24");

  auto start = wait_for(
      *agent,
      [&](const Point& p) {
        return is(p, "vm_event") && p.tags.at("event") == "start" && p.timestamp > t_boot;
      },
      2s);
  ASSERT_TRUE(start) << "no start event for " << kVm << "\n" << agent->stderr_text();
  EXPECT_EQ(start->i("pid"), vm.pid());
  auto first = wait_for(
      *agent, [&](const Point& p) { return is(p, "resource_usage") && p.timestamp > t_boot; }, 2s);
  ASSERT_TRUE(first) << "no resource_usage for " << kVm << "\n" << agent->stderr_text();
  const double first_after_s = double(first->timestamp - start->timestamp) / 1e9;
  EXPECT_GT(first_after_s, 0.0) << "resource line stamped before the start event";
  EXPECT_LE(first_after_s, kInterval + kStartSlack) << "first resource line too late";
  std::printf(
      "[ figures ] start event pid %lld (qemu %d), stamped %.3f s after run-vm.sh was called; "
      "first resource_usage stamped %.3f s after the start event (limit %.2f s)\n",
      (long long)start->i("pid"), (int)vm.pid(), double(start->timestamp - t_boot) / 1e9,
      first_after_s, kInterval + kStartSlack);

  // 2. Ticks against /proc, with the guest busy.
  Load load(ns, tmp.path);
  usleep(300000);
  int rounds = 0, memory_rounds = 0, moved = 0;
  for (int attempt = 1; rounds < kRounds || memory_rounds < kMemoryRounds; ++attempt) {
    ASSERT_LE(attempt, kMaxRounds) << "memory moved around " << moved << " of " << attempt - 1
                                   << " ticks: only " << memory_rounds << " exact ones";
    // Under load qemu's resident set moves at most ticks: once the counters have been
    // compared while moving, the guest idles for the remaining memory comparisons.
    if (rounds >= kRounds) load.stop();
    const ProcView a = read_proc(vm.pid());
    const int64_t t = now_ns();
    auto ru = wait_for(
        *agent, [&](const Point& p) { return is(p, "resource_usage") && p.timestamp > t; }, 2s);
    ASSERT_TRUE(ru) << agent->stderr_text();
    const int64_t ts = ru->timestamp;
    auto km = wait_for(
        *agent, [&](const Point& p) { return is(p, "kinfo_mem") && p.timestamp == ts; }, 2s);
    ASSERT_TRUE(km) << "no kinfo_mem for the tick of " << ts;
    const ProcView b = read_proc(vm.pid());

    if (a.tids != b.tids) {  // a thread came or went: the task sums are not comparable
      std::printf("[ note ] qemu threads changed around a tick (%zu -> %zu): next tick\n",
                  a.tids.size(), b.tids.size());
      continue;
    }
    ++rounds;
    const size_t threads = b.tids.size();
    // Counters lie between the reads around the tick. /proc truncates utime and stime
    // of each thread to clock ticks, so the later read may be up to 2 ticks per thread
    // short; 2 µs covers the 6 decimals of utime and stime.
    const double cpu = cpu_of(*ru);
    const double cpu_lo = double(a.cpu_ticks) / hz - 2e-6;
    const double cpu_hi = double(b.cpu_ticks + 2 * int64_t(threads)) / hz + 2e-6;
    EXPECT_GE(cpu, cpu_lo) << "tick " << ts;
    EXPECT_LE(cpu, cpu_hi) << "tick " << ts;
    // The same from the threads' exact runtimes (what utime+stime add up to).
    EXPECT_GE(cpu, double(a.runtime_ns) / 1e9 - 2e-6) << "tick " << ts;
    EXPECT_LE(cpu, double(b.runtime_ns) / 1e9 + 2e-6) << "tick " << ts;
    EXPECT_GE(ru->i("minflt"), a.minflt) << "tick " << ts;
    EXPECT_LE(ru->i("minflt"), b.minflt) << "tick " << ts;
    EXPECT_GE(ru->i("maxflt"), a.majflt) << "tick " << ts;  // maxflt = major faults
    EXPECT_LE(ru->i("maxflt"), b.majflt) << "tick " << ts;
    EXPECT_GE(ctxsw_of(*ru), a.ctxsw) << "tick " << ts;
    EXPECT_LE(ctxsw_of(*ru), b.ctxsw) << "tick " << ts;
    EXPECT_NEAR(double(km->i("runtime")), cpu * 1e6, 3.0) << "runtime is utime+stime in µs";
    const double up_lo = double(a.boottime_ns) / 1e9 - double(a.start_ticks + 1) / hz;
    const double up_hi = double(b.boottime_ns) / 1e9 - double(a.start_ticks) / hz;
    EXPECT_GE(fl(*km, "uptime"), up_lo);
    EXPECT_LE(fl(*km, "uptime"), up_hi);

    const bool still = a.statm == b.statm;
    if (still) {
      ++memory_rounds;
      EXPECT_EQ(km->i("rss"), a.statm[1]) << "tick " << ts;
      EXPECT_EQ(ru->i("maxrss"), a.statm[1]) << "tick " << ts;
      EXPECT_EQ(km->i("vsize"), a.statm[0] * 4096) << "tick " << ts;
      EXPECT_EQ(km->i("tsize"), a.statm[3]) << "tick " << ts;
      EXPECT_EQ(km->i("dsize"), a.statm[5]) << "tick " << ts;
    } else {
      ++moved;
      std::printf(
          "[ note ] qemu memory moved around tick %lld (resident %lld -> %lld, size "
          "%lld -> %lld): memory not compared, next tick\n",
          (long long)ts, (long long)a.statm[1], (long long)b.statm[1], (long long)a.statm[0],
          (long long)b.statm[0]);
    }
    std::printf(
        "[ figures ] tick %d (%zu threads): cpu /proc %.2f..%.2f s (+%.2f slack), schedstat "
        "%.6f..%.6f s, agent %.6f s (runtime %lld us); minflt %lld..%lld, agent %lld; majflt "
        "%lld..%lld, agent maxflt "
        "%lld; ctxsw tasks %lld..%lld, agent %lld (nvcsw %lld + nivcsw %lld), "
        "/proc/<pid>/status %lld..%lld; uptime %.3f..%.3f, agent %.3f\n",
        rounds, threads, double(a.cpu_ticks) / hz, double(b.cpu_ticks) / hz,
        2.0 * double(threads) / hz, double(a.runtime_ns) / 1e9, double(b.runtime_ns) / 1e9, cpu,
        (long long)km->i("runtime"), (long long)a.minflt, (long long)b.minflt,
        (long long)ru->i("minflt"), (long long)a.majflt, (long long)b.majflt,
        (long long)ru->i("maxflt"), (long long)a.ctxsw, (long long)b.ctxsw,
        (long long)ctxsw_of(*ru), (long long)ru->i("nvcsw"), (long long)ru->i("nivcsw"),
        (long long)a.leader_ctxsw, (long long)b.leader_ctxsw, up_lo, up_hi, fl(*km, "uptime"));
    if (still)
      std::printf(
          "[ figures ] tick %d memory: statm resident %lld pages, agent rss %lld / maxrss %lld; "
          "statm size %lld pages = %lld B, agent vsize %lld B; text %lld, agent tsize %lld; "
          "data %lld, agent dsize %lld\n",
          rounds, (long long)a.statm[1], (long long)km->i("rss"), (long long)ru->i("maxrss"),
          (long long)a.statm[0], (long long)a.statm[0] * 4096, (long long)km->i("vsize"),
          (long long)a.statm[3], (long long)km->i("tsize"), (long long)a.statm[5],
          (long long)km->i("dsize"));
    // Read just after the task sums: more faults means they moved in between, or that
    // exited threads left some behind (which the agent counts and the task sums do not).
    if (b.whole_minflt != b.minflt || b.whole_majflt != b.majflt)
      std::printf(
          "[ note ] /proc/<pid>/stat after the tick: minflt %lld vs task sum %lld, "
          "majflt %lld vs %lld\n",
          (long long)b.whole_minflt, (long long)b.minflt, (long long)b.whole_majflt,
          (long long)b.majflt);
  }
  load.stop();

  // Every tick so far: counters never go down.
  {
    std::optional<Point> prev;
    int ticks = 0;
    for (const auto& l : agent->lines()) {
      auto p = point_of(l);
      if (!is(p, "resource_usage")) continue;
      ++ticks;
      if (prev) {
        EXPECT_GE(p->i("minflt"), prev->i("minflt")) << l;
        EXPECT_GE(p->i("maxflt"), prev->i("maxflt")) << l;
        EXPECT_GE(fl(*p, "utime"), fl(*prev, "utime")) << l;
        EXPECT_GE(fl(*p, "stime"), fl(*prev, "stime")) << l;
        EXPECT_GE(cpu_of(*p), cpu_of(*prev)) << l;
        EXPECT_GE(ctxsw_of(*p), ctxsw_of(*prev)) << l;
        EXPECT_GT(p->timestamp, prev->timestamp) << l;
      }
      prev = p;
    }
    ASSERT_TRUE(prev);
    std::printf(
        "[ figures ] %d resource_usage ticks for %s, monotonic: cpu %.6f..%.6f s, minflt "
        "%lld..%lld, maxflt %lld..%lld, ctxsw %lld..%lld\n",
        ticks, kVm.c_str(), cpu_of(*first), cpu_of(*prev), (long long)first->i("minflt"),
        (long long)prev->i("minflt"), (long long)first->i("maxflt"), (long long)prev->i("maxflt"),
        (long long)ctxsw_of(*first), (long long)ctxsw_of(*prev));
  }

  // 3. SIGKILL: one exit event within 1 s, and no resource line after it.
  const int64_t t_kill = now_ns();
  const auto k0 = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(vm.pid(), SIGKILL), 0);
  auto gone = wait_for(
      *agent,
      [&](const Point& p) {
        return is(p, "vm_event") && p.tags.at("event") == "exit" && p.timestamp > t_boot;
      },
      1s);
  const double exit_seen_s = since_s(k0);
  ASSERT_TRUE(gone) << "no exit event within 1 s of SIGKILL\n"
                    << vm_lines(*agent) << agent->stderr_text();
  EXPECT_EQ(gone->i("signal"), 9);
  EXPECT_EQ(gone->i("pid"), vm.pid());
  EXPECT_GE(gone->timestamp, t_kill);
  for (int i = 0; i < 100 && running(vm.pid()); ++i) usleep(20000);
  EXPECT_FALSE(running(vm.pid())) << "qemu survived SIGKILL";
  usleep(useconds_t(3 * kInterval * 1e6));  // three more ticks

  int starts = 0, exits = 0, after_exit = 0, stamped_after = 0;
  bool exit_seen = false;
  for (const auto& l : agent->lines()) {
    auto p = point_of(l);
    if (is(p, "vm_event")) {
      if (p->tags.at("event") == "start") ++starts;
      if (p->tags.at("event") == "exit") {
        ++exits;
        exit_seen = true;
      }
    } else if (is(p, "resource_usage") || is(p, "kinfo_mem")) {
      if (p->timestamp > gone->timestamp) ++stamped_after;
      if (exit_seen && p->measurement == "resource_usage") ++after_exit;
    }
  }
  EXPECT_EQ(starts, 1) << vm_lines(*agent);
  EXPECT_EQ(exits, 1) << vm_lines(*agent);
  EXPECT_LE(after_exit, 1) << "resource lines after the exit event (one tick may be in flight)\n"
                           << vm_lines(*agent);
  EXPECT_EQ(stamped_after, 0) << "resource lines stamped after the exit\n" << vm_lines(*agent);
  std::printf(
      "[ figures ] SIGKILL: exit event seen after %.3f s (stamped %.3f s after the kill), "
      "signal %lld, pid %lld (qemu %d), lifetime %s s; exit events %d, resource_usage lines "
      "after it %d, stamped after it %d\n",
      exit_seen_s, double(gone->timestamp - t_kill) / 1e9, (long long)gone->i("signal"),
      (long long)gone->i("pid"), (int)vm.pid(), gone->fields.at("lifetime").c_str(), exits,
      after_exit, stamped_after);

  agent->signal(SIGTERM);
  const int st = agent->wait(10s);
  EXPECT_EQ(st, 0) << agent->stderr_text();
  std::printf("[ vm ] test body %.1f s\n", since_s(t_begin));
}

}  // namespace
}  // namespace vmscope::test::vm_resources
