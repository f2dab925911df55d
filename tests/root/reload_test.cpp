// Root tests: SIGHUP reloads `vmscope run`'s configuration file without loss. A new output,
// interval and log level take effect; vm_net goes on equalling the tap's own counters (no
// reset); every tick reaches InfluxDB, the output kept across the reload as well as the
// one it added from then on. A bad file keeps the running configuration with one error.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "bridge_env.h"
#include "json.h"
#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test {
namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/vmscope-reload.XXXXXX";
    if (mkdtemp(tmpl)) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Timestamps of the agent's `vmscope` line (one per tick) on its stdout, in order.
std::vector<int64_t> tick_times(Child& agent) {
  std::vector<int64_t> ts;
  for (const auto& l : agent.lines())
    if (auto p = parse_point(l); p && p->measurement == "vmscope") ts.push_back(p->timestamp);
  return ts;
}

// stderr lines that contain `what`.
size_t count_lines(const std::string& text, const std::string& what) {
  size_t n = 0;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) n += l.find(what) != std::string::npos;
  return n;
}

bool wait_stderr(Child& agent, const std::string& what, size_t times = 1) {
  for (int i = 0; i < 100; ++i) {
    if (count_lines(agent.stderr_text(), what) >= times) return true;
    usleep(50000);
  }
  return false;
}

// One column of a query's rows (0: the time, as epoch ns), as integers, in time order.
std::vector<int64_t> influx_column(const InfluxServer& influx, const std::string& db,
                                   const std::string& q, size_t column = 0) {
  std::vector<int64_t> out;
  const Json j = parse_json(influx.get_query(db, q, 10, "--data-urlencode epoch=ns"));
  const Json* results = j.get("results");
  if (!results || results->items.empty()) return out;
  const Json* series = results->items[0].get("series");
  if (!series) return out;
  for (const Json& sr : series->items)
    if (const Json* values = sr.get("values"))
      for (const Json& row : values->items) out.push_back(std::stoll(row.items.at(column).text));
  return out;
}

// Median gap between consecutive timestamps after `from_ns`, in seconds.
double median_gap(const std::vector<int64_t>& ts, int64_t from_ns) {
  std::vector<double> gaps;
  for (size_t i = 1; i < ts.size(); ++i)
    if (ts[i - 1] >= from_ns) gaps.push_back(static_cast<double>(ts[i] - ts[i - 1]) / 1e9);
  if (gaps.empty()) return 0;
  std::sort(gaps.begin(), gaps.end());
  return gaps[gaps.size() / 2];
}

TEST(Reload, NewOutputIntervalAndLogLevelWithoutResetOrLostTick) {
  Bridge br;
  br.add_tap("vmmtap0");
  auto holder = br.hold("solo5-hvt", kSolo5Args);
  const Netns& ns = br.ns;
  TempDir tmp;
  ASSERT_FALSE(tmp.path.empty());
  InfluxServer influx(ns, tmp.path + "/influx", 18086);
  influx.post_query("CREATE DATABASE first");
  influx.post_query("CREATE DATABASE second");
  const std::string first = influx.base() + "/write?db=first";
  const std::string second = influx.base() + "/write?db=second";
  const std::string conf = tmp.path + "/vmscope.toml";
  write_file(conf, "interval = 0.5\nlog_level = \"info\"\noutputs = [\"" + first + "\", \"-\"]\n");
  Child agent(vmscope_bin(), {"run", "--config", conf, "--spool-dir", tmp.path + "/spool"},
              SpawnOptions{ns.name(), "", {}, false});
  ASSERT_TRUE(wait_point(agent, "vm_net", "vm", "web", 0)) << agent.stderr_text();

  const Mac br_mac = mac_of(ns, "br0");
  const auto frame = ipv4_frame(br_mac, kVmMac, ip("10.99.0.2"), ip("10.99.0.1"), 17, 100);
  uint64_t frames = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i) inject(*holder, frame);
    frames += n;
    ASSERT_TRUE(wait_stat(ns, "vmmtap0", "rx_packets", frames));
  };
  auto expect_all_counted = [&](const char* when, const std::string& vm) {
    const int64_t rx = int64_t(ns.stat("vmmtap0", "rx_bytes"));
    ASSERT_EQ(rx, int64_t(frames * frame.size())) << when;
    auto net = wait_point(agent, "vm_net", "vm", vm, now_ns());
    ASSERT_TRUE(net) << when << ": " << agent.stderr_text();
    EXPECT_EQ(net->i("vm_to_host_udp_bytes"), rx) << when;
    std::printf("[ figures ] %s: %llu frames, tap rx %lld B, vm_net udp %lld B\n", when,
                (unsigned long long)frames, (long long)rx,
                (long long)net->i("vm_to_host_udp_bytes"));
  };
  send(5);
  expect_all_counted("before the reload", "web");
  // At info, a link change logs nothing.
  ns.must("ip link add brq1 type bridge");
  usleep(300000);
  EXPECT_EQ(count_lines(agent.stderr_text(), "link event"), 0u) << agent.stderr_text();

  // The VM renamed by an override, too: its counters go on under the new name.
  write_file(conf, "interval = 0.25\nlog_level = \"debug\"\noutputs = [\"" + first + "\", \"" +
                       second +
                       "\", \"-\"]\n[[override]]\nprocess = \"alice:web\"\nname = \"web2\"\n");
  const int64_t hup_ns = now_ns();
  agent.signal(SIGHUP);
  ASSERT_TRUE(wait_stderr(agent, "reload of " + conf + ": interval 0.5 -> 0.25"))
      << agent.stderr_text();
  EXPECT_EQ(count_lines(agent.stderr_text(),
                        "reload of " + conf +
                            ": interval 0.5 -> 0.25, log_level info -> debug, outputs (added " +
                            second + "), override (0 -> 1 entries)"),
            1u)
      << agent.stderr_text();
  const int64_t applied_ns = now_ns();
  {
    std::istringstream in(agent.stderr_text());
    for (std::string l; std::getline(in, l);)
      if (l.find("reload") != std::string::npos) std::printf("[ log ] %s\n", l.c_str());
  }
  ns.must("ip link add brq2 type bridge");
  EXPECT_TRUE(wait_stderr(agent, "link event: changed brq2")) << "debug is on now";
  send(7);
  expect_all_counted("after the reload", "web2");
  EXPECT_TRUE(wait_point(agent, "resource_usage", "vm", "web2", now_ns())) << "the process too";
  usleep(2'000'000);
  send(3);
  expect_all_counted("after the reload, more traffic", "web2");

  agent.signal(SIGTERM);
  const int st = agent.wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();
  EXPECT_EQ(count_lines(agent.stderr_text(), " error "), 0u) << agent.stderr_text();

  const std::vector<int64_t> ticks = tick_times(agent);
  ASSERT_GT(ticks.size(), 10u);
  // The interval: 0.5 s before, 0.25 s after; no gap longer than the old interval (with
  // slack for a loaded machine) around the reload.
  EXPECT_NEAR(median_gap(ticks, applied_ns), 0.25, 0.05);
  for (size_t i = 1; i < ticks.size(); ++i)
    EXPECT_LT(ticks[i] - ticks[i - 1], 750'000'000) << "gap before tick " << i;

  // InfluxDB: the kept output got every tick, the added one every tick from the reload on.
  const std::string q = "SELECT tick_ns FROM vmscope";
  const std::vector<int64_t> in_first = influx_column(influx, "first", q);
  EXPECT_EQ(in_first, ticks) << "kept output: " << in_first.size() << " of " << ticks.size();
  const std::vector<int64_t> in_second = influx_column(influx, "second", q);
  ASSERT_FALSE(in_second.empty());
  auto from = std::find(ticks.begin(), ticks.end(), in_second.front());
  ASSERT_NE(from, ticks.end());
  EXPECT_EQ(in_second, std::vector<int64_t>(from, ticks.end())) << "added output: no gap";
  // It starts with the first tick after the signal (or the one after, had a tick begun
  // just before the signal was read).
  auto after_hup = std::find_if(ticks.begin(), ticks.end(), [&](int64_t t) { return t > hup_ns; });
  EXPECT_LE(from - after_hup, 1);
  EXPECT_GE(from - after_hup, 0);
  std::printf("[ figures ] %zu ticks; first db %zu, second db %zu (from the reload)\n",
              ticks.size(), in_first.size(), in_second.size());
  // vm_net in both databases: the last point equals the tap's own counter.
  const int64_t rx = int64_t(ns.stat("vmmtap0", "rx_bytes"));
  for (const char* db : {"first", "second"}) {
    const std::vector<int64_t> last = influx_column(
        influx, db, "SELECT last(vm_to_host_udp_bytes) FROM vm_net WHERE vm = 'web2'", 1);
    ASSERT_EQ(last.size(), 1u) << db;
    EXPECT_EQ(last[0], rx) << db;
  }
}

TEST(Reload, ABadConfigKeepsTheRunningOneWithOneErrorLine) {
  Netns ns;
  TempDir tmp;
  ASSERT_FALSE(tmp.path.empty());
  const std::string conf = tmp.path + "/vmscope.toml";
  write_file(conf, "interval = 0.2\noutputs = [\"-\"]\n");
  Child agent(vmscope_bin(), {"run", "--config", conf, "--spool-dir", tmp.path + "/spool"},
              SpawnOptions{ns.name(), "", {}, false});
  ASSERT_TRUE(
      agent.wait_line([](const std::string& l) { return l.rfind("vmscope ", 0) == 0; }, 10s))
      << agent.stderr_text();

  struct Bad {
    std::string text;  // empty: the file is gone
    std::string problem;
  };
  const std::vector<Bad> bads = {
      {"interval = \n", "Error while parsing"},
      {"interval = 0\n", "interval 0: must be between 0.01 and 3600 seconds"},
      {"outputs = [\"tcp://\"]\n", "output \"tcp://\": missing host"},
      {"", "File does not exist"},
  };
  size_t errors = 0;
  for (const Bad& b : bads) {
    if (b.text.empty())
      std::filesystem::remove(conf);
    else
      write_file(conf, b.text);
    agent.signal(SIGHUP);
    ++errors;
    ASSERT_TRUE(wait_stderr(agent, " error ", errors)) << agent.stderr_text();
    const std::string err = agent.stderr_text();
    EXPECT_EQ(count_lines(err, " error "), errors) << err;
    EXPECT_EQ(count_lines(err, b.problem), 1u) << b.problem << "\n" << err;
    std::string last;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);)
      if (l.find(" error ") != std::string::npos) last = l;
    std::printf("[ log ] %s\n", last.c_str());
    EXPECT_NE(last.find(conf), std::string::npos) << "names the file: " << last;
    EXPECT_NE(last.find("running on with the previous configuration"), std::string::npos) << last;
    // Still running, still at 0.2 s.
    const int64_t t = now_ns();
    ASSERT_TRUE(agent.wait_line(
        [&](const std::string& l) {
          auto p = parse_point(l);
          return p && p->measurement == "vmscope" && p->timestamp > t;
        },
        5s));
  }
  usleep(1'500'000);
  EXPECT_NEAR(median_gap(tick_times(agent), 0), 0.2, 0.04);
  EXPECT_EQ(count_lines(agent.stderr_text(), " info reload of"), 0u) << "nothing was applied";

  // A good file again is applied.
  write_file(conf, "interval = 0.3\noutputs = [\"-\"]\n");
  agent.signal(SIGHUP);
  EXPECT_TRUE(wait_stderr(agent, "reload of " + conf + ": interval 0.2 -> 0.3"))
      << agent.stderr_text();
  agent.signal(SIGTERM);
  const int st = agent.wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();
  EXPECT_EQ(count_lines(agent.stderr_text(), " error "), errors);
}

}  // namespace
}  // namespace vmscope::test
