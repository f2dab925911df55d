// Root tests: a destination that accepts connections but never answers (a hung InfluxDB)
// must not delay ticks or the other outputs, and must not stop the agent from exiting; an
// InfluxDB that is down for a minute, while the agent is restarted, loses no tick.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "json.h"
#include "test_env.h"

namespace vmscope::test {
namespace {

// A directory of the test's own (mkdtemp template), removed with everything in it.
struct TempDir {
  explicit TempDir(std::string tmpl) {
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

// A listening socket on 127.0.0.1 inside `ns` that never accepts: the kernel completes
// handshakes into the backlog and requests are never answered.
int hung_listener(const Netns& ns, uint16_t& port) {
  int fd = -1;
  std::thread t([&] {
    int nsfd = open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) return;
    close(nsfd);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      close(fd);
      fd = -1;
      return;
    }
    port = ntohs(a.sin_port);
  });
  t.join();
  return fd;
}

TEST(Outputs, AHungInfluxDbDelaysNeitherTicksNorOtherOutputsNorExit) {
  Netns ns;
  uint16_t port = 0;
  int listener = hung_listener(ns, port);
  ASSERT_GE(listener, 0);
  // What the hung destination never took stays spooled: in a directory of this test's own.
  TempDir spool("/tmp/vmscope-hung.XXXXXX");
  Child agent(vmscope_bin(),
              {"run", "--interval", "0.25", "--output",
               "http://127.0.0.1:" + std::to_string(port) + "/write?db=vmscope", "--output", "-",
               "--spool-dir", spool.path},
              SpawnOptions{ns.name(), "", {}, false});
  // Every HTTP attempt waits its full 2 s timeout; stdout must still see every tick.
  const auto start = std::chrono::steady_clock::now();
  int ticks = 0;
  while (ticks < 10 && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    ticks = 0;
    for (const auto& l : agent.lines())
      if (l.rfind("vmscope ", 0) == 0) ++ticks;
    usleep(50000);
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(ticks, 10) << agent.stderr_text();
  EXPECT_LT(took, 4.0) << "10 ticks of 0.25 s took " << took << " s";
  agent.signal(SIGTERM);
  int st = agent.wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << "agent did not exit within 10 s";
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();
  close(listener);
}

// An InfluxDB of the tests/influx scripts that can be stopped and started again on the same
// data directory (vm_fixture's InfluxServer purges it when it stops).
class RestartableInflux {
 public:
  RestartableInflux(const Netns& ns, std::string dir, int port)
      : ns_(ns), dir_(std::move(dir)), port_(port) {
    start();
  }
  ~RestartableInflux() {
    sh(source_dir() + "/tests/influx/stop-influxdb.sh --timeout 5 --dir " + dir_ +
       " >/dev/null 2>&1");
  }
  void start() {
    must(source_dir() + "/tests/influx/start-influxdb.sh --dir " + dir_ + " --port " +
         std::to_string(port_) + " --netns " + ns_.name() + " --timeout 20");
  }
  void stop() { must(source_dir() + "/tests/influx/stop-influxdb.sh --timeout 5 --dir " + dir_); }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // The `time` column of a query's rows, as epoch ns.
  std::vector<int64_t> times(const std::string& q) const {
    const std::string out = ns_.capture("curl -sS -m 10 -G '" + url("/query") +
                                        "' --data-urlencode db=vmscope --data-urlencode "
                                        "epoch=ns --data-urlencode 'q=" +
                                        q + "'");
    std::vector<int64_t> ts;
    const Json j = parse_json(out);
    const Json* results = j.get("results");
    if (!results || results->items.empty()) return ts;
    const Json* series = results->items[0].get("series");
    if (!series) return ts;
    for (const Json& sr : series->items)
      if (const Json* values = sr.get("values"))
        for (const Json& row : values->items) ts.push_back(std::stoll(row.items.at(0).text));
    return ts;
  }

 private:
  const Netns& ns_;
  std::string dir_;
  int port_;
};

// Timestamps of the agent's own `vmscope` line, one per tick, from its stdout.
std::vector<int64_t> tick_times(Child& agent) {
  std::vector<int64_t> ts;
  for (const auto& l : agent.lines())
    if (auto p = parse_point(l); p && p->measurement == "vmscope") ts.push_back(p->timestamp);
  return ts;
}

// The last `vmscope` line's field, from stdout.
int64_t last_self_field(Child& agent, const std::string& field) {
  int64_t v = -1;
  for (const auto& l : agent.lines())
    if (auto p = parse_point(l); p && p->measurement == "vmscope" && p->fields.count(field))
      v = p->i(field);
  return v;
}

TEST(Outputs, InfluxDbDownForAMinuteWithAnAgentRestartLosesNoTick) {
  Netns ns;
  TempDir tmp("/tmp/vmscope-outage.XXXXXX");
  const std::string& dir = tmp.path;
  ASSERT_FALSE(dir.empty());
  RestartableInflux influx(ns, dir + "/influx", 18086);
  ns.must("curl -sS -m 5 -XPOST '" + influx.url("/query") +
          "' --data-urlencode 'q=CREATE DATABASE vmscope' >/dev/null");
  const std::vector<std::string> args = {
      "run",      "--interval", "1",           "--output",    influx.url("/write?db=vmscope"),
      "--output", "-",          "--spool-dir", dir + "/spool"};
  const SpawnOptions in_ns{ns.name(), "", {}, false};

  auto first = std::make_unique<Child>(vmscope_bin(), args, in_ns);
  ASSERT_TRUE(
      first->wait_line([](const std::string& l) { return l.rfind("vmscope ", 0) == 0; }, 10s))
      << first->stderr_text();
  std::this_thread::sleep_for(3s);
  influx.stop();
  const auto outage_start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(25s);
  EXPECT_GT(last_self_field(*first, "spool_batches"), 0) << "the outage was spooled";
  first->signal(SIGTERM);
  int st = first->wait(10s);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << first->stderr_text();
  std::vector<int64_t> want = tick_times(*first);

  // The new agent finds the old one's spool and keeps it while InfluxDB is still down.
  Child second(vmscope_bin(), args, in_ns);
  std::this_thread::sleep_for(60s - (std::chrono::steady_clock::now() - outage_start));
  EXPECT_GT(last_self_field(second, "spool_batches"), 0) << second.stderr_text();
  influx.start();

  // Replay, then a few live ticks.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline &&
         last_self_field(second, "spool_batches") != 0)
    std::this_thread::sleep_for(500ms);
  std::this_thread::sleep_for(3s);
  second.signal(SIGTERM);
  st = second.wait(10s);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << second.stderr_text();
  const std::vector<int64_t> second_ticks = tick_times(second);
  want.insert(want.end(), second_ticks.begin(), second_ticks.end());
  ASSERT_GT(want.size(), 60u);

  const std::vector<int64_t> got = influx.times("SELECT tick_ns FROM vmscope");
  // Every tick both agents printed is in InfluxDB, nothing else, in time order.
  EXPECT_EQ(got, want) << "ticks " << want.size() << ", in InfluxDB " << got.size() << "\n"
                       << second.stderr_text();
  EXPECT_EQ(last_self_field(second, "lines_dropped"), 0);
  EXPECT_EQ(last_self_field(second, "spool_dropped_batches"), 0);
  // No gap beyond one interval while an agent ran; across the restart, the time the new
  // agent took to start (a stop, a BPF load and its first interval).
  for (size_t i = 1; i < want.size(); ++i) {
    const int64_t gap = want[i] - want[i - 1];
    EXPECT_GT(gap, 0) << i;
    const bool restart = want[i - 1] == tick_times(*first).back();
    EXPECT_LE(gap, restart ? 4'000'000'000 : 1'200'000'000)
        << "between ticks " << i - 1 << " and " << i;
  }
}

}  // namespace
}  // namespace vmscope::test
