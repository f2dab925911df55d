// Root tests of `vmscope top`: batch mode against the real test VM (rates times the
// interval equal the bytes the tap's own counters saw), the interactive screen driven
// through tmux (rows, sorting, filter, resize, quit without leftovers), and reading a
// running `vmscope run` instead of attaching a second set of programs.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>

#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test {
namespace {

// ---- batch output ----

// "8.41M" -> 8.41e6 (top's figures: 3 significant digits and an SI letter).
double si(const std::string& s) {
  size_t used = 0;
  double v = std::stod(s, &used);
  switch (used < s.size() ? s[used] : ' ') {
    case 'k':
      return v * 1e3;
    case 'M':
      return v * 1e6;
    case 'G':
      return v * 1e9;
    case 'T':
      return v * 1e12;
    default:
      return v;
  }
}

struct Snapshot {
  std::string title;  // first line: "vmscope top - ... (mode)"
  double interval_s = 0;
  std::map<std::string, std::map<std::string, std::string>> rows;  // VM -> column -> cell
};

// `vmscope top -b` output: snapshots of summary lines, a blank line, the header, rows.
std::vector<Snapshot> parse_batch(const std::vector<std::string>& lines) {
  std::vector<Snapshot> out;
  std::vector<std::string> header;
  for (const std::string& l : lines) {
    if (l.rfind("vmscope top - ", 0) == 0) {
      out.emplace_back().title = l;
      header.clear();
      continue;
    }
    if (out.empty() || l.empty()) continue;
    if (auto i = l.find("interval "); l.rfind("Net:", 0) == 0 && i != std::string::npos) {
      out.back().interval_s = std::stod(l.substr(i + 9));
      continue;
    }
    std::istringstream ss(l);
    std::vector<std::string> cells;
    for (std::string c; ss >> c;) cells.push_back(c);
    if (cells.empty()) continue;
    if (cells[0] == "VM" || cells[0] == "VM*") {
      header.clear();
      for (std::string h : cells) {
        h.erase(std::remove(h.begin(), h.end(), '*'), h.end());
        header.push_back(h);
      }
      continue;
    }
    if (header.empty() || cells.size() != header.size()) continue;  // summary lines
    auto& row = out.back().rows[cells[0]];
    for (size_t i = 0; i < cells.size(); ++i) row[header[i]] = cells[i];
  }
  return out;
}

std::string dump(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(TopBatch, RatesOfARealVmEqualItsTapCounters) {
  vm_image();
  TempDir tmp("vmscope-top");
  Netns ns;
  const std::string tap = "vmmtap0";
  add_bridge_with_tap(ns, "vsbr0", "10.99.4.1/24", tap);
  Vm vm(ns, tmp.path, tap, "web1", "10.99.4.2/24");

  Child top(vmscope_bin(), {"top", "-b", "-n", "3", "-d", "1"},
            SpawnOptions{ns.name(), "", {}, false});
  // After the first snapshot (its sample is the second of top's): the traffic below falls
  // into the intervals of snapshots 2 and 3.
  ASSERT_TRUE(top.wait_line([](const std::string& l) { return l.rfind("web1 ", 0) == 0; }, 20s))
      << top.stderr_text() << dump(top.lines());
  const uint64_t vm_tx0 = ns.stat(tap, "rx_bytes"), vm_rx0 = ns.stat(tap, "tx_bytes");
  uint64_t downloaded = 0;
  for (int i = 0; i < 3; ++i)
    downloaded += std::stoull(
        ns.capture("curl -sS -f -m 10 -o /dev/null -w '%{size_download}' http://10.99.4.2/blob"));
  ASSERT_EQ(downloaded, 3u * 1048576);
  ASSERT_EQ(top.wait(20s), 0) << top.stderr_text();
  const uint64_t vm_tx = ns.stat(tap, "rx_bytes") - vm_tx0,
                 vm_rx = ns.stat(tap, "tx_bytes") - vm_rx0;

  auto snaps = parse_batch(top.lines());
  ASSERT_EQ(snaps.size(), 3u) << dump(top.lines());
  double tx_bytes = 0, rx_bytes = 0;
  for (size_t i = 1; i < snaps.size(); ++i) {
    ASSERT_TRUE(snaps[i].rows.count("web1")) << dump(top.lines());
    const auto& row = snaps[i].rows.at("web1");
    EXPECT_EQ(row.at("LAUNCHER"), "qemu");
    EXPECT_EQ(row.at("PID"), std::to_string(vm.pid()));
    EXPECT_GT(snaps[i].interval_s, 0.9);
    tx_bytes += si(row.at("TXbit/s")) * snaps[i].interval_s / 8;
    rx_bytes += si(row.at("RXbit/s")) * snaps[i].interval_s / 8;
  }
  std::printf(
      "[ info ] tap counters: VM sent %llu B, received %llu B; top's rates x interval: "
      "%.0f B, %.0f B\n",
      static_cast<unsigned long long>(vm_tx), static_cast<unsigned long long>(vm_rx), tx_bytes,
      rx_bytes);
  // The VM sent the downloads (tap RX = VM TX). Rates have 3 significant digits and the
  // interval 2 decimals: within 2% (plus a few stray frames of the idle guest).
  EXPECT_GE(vm_tx, downloaded);
  EXPECT_NEAR(tx_bytes, static_cast<double>(vm_tx), 0.02 * static_cast<double>(vm_tx) + 2000);
  EXPECT_NEAR(rx_bytes, static_cast<double>(vm_rx), 0.02 * static_cast<double>(vm_rx) + 2000);
  EXPECT_NE(snaps[0].title.find("own programs"), std::string::npos) << snaps[0].title;
}

// Two CPU-bound VMs pinned to one CPU: whenever one runs, the other waits. Whatever else
// the shared machine runs there, each thread either runs or waits (it never sleeps), so
// CPU% + WAIT% is 100 per VM, the two CPU% add up to at most one CPU, and each waits a
// good part of the time.
TEST(TopBatch, WaitOfTwoVmsSharingOneCpu) {
  Netns ns;
  const std::string cpu = "BUSY_CPU=" + std::to_string(sysconf(_SC_NPROCESSORS_ONLN) - 1);
  auto a = busy_vm("topwait1", {"BUSY_MB=4", "BUSY_THREADS=1", "BUSY_NO_NAPS=1", cpu});
  auto b = busy_vm("topwait2", {"BUSY_MB=4", "BUSY_THREADS=1", "BUSY_NO_NAPS=1", cpu});
  Child top(vmscope_bin(), {"top", "-b", "-n", "3", "-d", "1", "--sort", "wait"},
            SpawnOptions{ns.name(), "", {}, false});
  ASSERT_EQ(top.wait(20s), 0) << top.stderr_text();
  auto snaps = parse_batch(top.lines());
  ASSERT_EQ(snaps.size(), 3u) << dump(top.lines());
  for (size_t i = 0; i < snaps.size(); ++i) {
    ASSERT_TRUE(snaps[i].rows.count("topwait1") && snaps[i].rows.count("topwait2"))
        << dump(top.lines());
    double cpu_sum = 0;
    for (const char* vm : {"topwait1", "topwait2"}) {
      const auto& row = snaps[i].rows.at(vm);
      const double cpu_pct = std::stod(row.at("CPU%")), wait_pct = std::stod(row.at("WAIT%"));
      std::printf("[ figures ] snapshot %zu %s: CPU%% %.1f WAIT%% %.1f (interval %.2f s)\n", i + 1,
                  vm, cpu_pct, wait_pct, snaps[i].interval_s);
      EXPECT_GE(wait_pct, 30) << vm << "\n" << dump(top.lines());
      EXPECT_NEAR(cpu_pct + wait_pct, 100, 6) << vm << "\n" << dump(top.lines());
      // Nothing read, nothing written after start: the disk columns are figures, zero.
      EXPECT_EQ(row.at("DISKR/s"), "0") << vm;
      EXPECT_EQ(row.at("DISKW/s"), "0") << vm;
      cpu_sum += cpu_pct;
    }
    EXPECT_LE(cpu_sum, 102) << dump(top.lines());
  }
  // Sorted by wait: the header marks WAIT%.
  EXPECT_NE(dump(top.lines()).find("*WAIT%"), std::string::npos) << dump(top.lines());
  EXPECT_NE(snaps[0].title.find("own programs"), std::string::npos) << snaps[0].title;
}

// ---- interactive, through tmux ----

class Tmux {
 public:
  Tmux(const std::string& cmd, int width, int height)
      : socket_("vmscope-test-" + std::to_string(getpid())) {
    must(tmux("new-session -d -s top -x " + std::to_string(width) + " -y " +
              std::to_string(height) + " " + shq(cmd)));
  }
  ~Tmux() { sh(tmux("kill-server") + " 2>/dev/null"); }
  std::string screen() const { return capture(tmux("capture-pane -p -t top")); }
  void keys(const std::string& k) const { must(tmux("send-keys -t top " + k)); }
  void resize(int width, int height) const {
    must(
        tmux("resize-window -t top -x " + std::to_string(width) + " -y " + std::to_string(height)));
  }
  pid_t pane_pid() const { return std::stoi(capture(tmux("list-panes -t top -F '#{pane_pid}'"))); }
  // Waits until the screen satisfies pred; returns the last screen either way.
  std::string wait_for(const std::function<bool(const std::string&)>& pred,
                       std::chrono::milliseconds timeout = 10s) const {
    auto end = std::chrono::steady_clock::now() + timeout;
    std::string s;
    do {
      s = screen();
      if (pred(s)) break;
      usleep(100000);
    } while (std::chrono::steady_clock::now() < end);
    return s;
  }

 private:
  std::string tmux(const std::string& args) const { return "tmux -L " + socket_ + " " + args; }
  std::string socket_;
};

// Table rows of a screen: the lines after the header, first word = VM name.
std::vector<std::string> vm_order(const std::string& screen, const std::set<std::string>& ours) {
  std::vector<std::string> order;
  std::istringstream in(screen);
  bool table = false;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == "VM" || first == "VM*")
      table = true;
    else if (table && ours.count(first))
      order.push_back(first);
  }
  return order;
}

// Whether every one of `names` has a row whose CPU% is known (rates need two samples).
bool rows_with_rates(const std::string& screen, const std::set<std::string>& names) {
  std::istringstream in(screen);
  int cpu_col = -1;
  size_t found = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> cells;
    for (std::string c; words >> c;) cells.push_back(c);
    if (cells.empty()) continue;
    if (cells[0] == "VM" || cells[0] == "VM*") {
      for (size_t i = 0; i < cells.size(); ++i)
        if (cells[i].find("CPU%") != std::string::npos) cpu_col = static_cast<int>(i);
    } else if (cpu_col > 0 && names.count(cells[0]) && static_cast<int>(cells.size()) > cpu_col &&
               cells[static_cast<size_t>(cpu_col)] != "-") {
      ++found;
    }
  }
  return found == names.size();
}

TEST(TopScreen, RowsSortFilterResizeAndQuitLeavesNothingAttached) {
  Netns ns;
  add_bridge_with_tap(ns, "vsbr0", "10.99.5.1/24", "vmmtap0");
  // Three process VMs (CPU-heavy, memory-heavy, idle) and one solo5 VM holding the tap.
  auto alpha = busy_vm("alpha", {"BUSY_MB=8", "BUSY_THREADS=1"});
  auto beta = busy_vm("beta", {"BUSY_MB=160", "BUSY_THREADS=0"});
  auto gamma = busy_vm("gamma", {"BUSY_MB=8", "BUSY_THREADS=0"});
  Child holder(
      helper_bin("tap_holder"),
      {"--mem=64", "--net:service=vmmtap0", "--", "/run/albatross/bob:delta.img", "--name=delta"},
      SpawnOptions{ns.name(), "solo5-hvt", {}, true});
  ASSERT_TRUE(holder.wait_line([](const std::string& l) { return l.rfind("ready ", 0) == 0; }, 5s));
  const std::set<std::string> ours = {"alpha", "beta", "gamma", "delta"};

  TempDir tmp("vmscope-top-tmux");
  const std::string status = tmp.path + "/status";
  Tmux t(ns.exec(vmscope_bin() + " top -d 0.5") + "; echo $? > " + status + "; sleep 60", 80, 24);
  std::string s = t.wait_for([&](const std::string& s) { return rows_with_rates(s, ours); });
  ASSERT_TRUE(rows_with_rates(s, ours)) << s;

  // 80x24: no line is wrapped, the essential columns are there, the optional ones not.
  for (const char* col :
       {"VM", "CPU%", "WAIT%", "RSS", "FLT/s", "DISKR/s", "DISKW/s", "RXbit/s", "TXbit/s"})
    EXPECT_NE(s.find(col), std::string::npos) << col << "\n" << s;
  EXPECT_EQ(s.find("LAUNCHER"), std::string::npos) << s;
  std::istringstream lines(s);
  for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 80u) << l;

  // The default sort is CPU: the spinning VM first.
  auto order = vm_order(s, ours);
  ASSERT_EQ(order.size(), 4u) << s;
  EXPECT_EQ(order.front(), "alpha") << s;
  // M: memory. beta holds 160 MiB.
  t.keys("M");
  s = t.wait_for([&](const std::string& s) {
    auto o = vm_order(s, ours);
    return !o.empty() && o.front() == "beta" && s.find("Sort: mem") != std::string::npos;
  });
  EXPECT_EQ(vm_order(s, ours).front(), "beta") << s;
  // W: CPU wait, marked in the header; D: disk, both disk columns marked.
  t.keys("W");
  s = t.wait_for([&](const std::string& s) { return s.find("Sort: wait") != std::string::npos; });
  EXPECT_NE(s.find("*WAIT%"), std::string::npos) << s;
  t.keys("D");
  s = t.wait_for([&](const std::string& s) { return s.find("Sort: disk") != std::string::npos; });
  EXPECT_NE(s.find("*DISKR/s *DISKW/s"), std::string::npos) << s;
  // P: back to CPU.
  t.keys("P");
  s = t.wait_for([&](const std::string& s) { return s.find("Sort: cpu") != std::string::npos; });
  EXPECT_EQ(vm_order(s, ours).front(), "alpha") << s;

  // Filter: only gamma stays.
  t.keys("/ g a m m Enter");
  s = t.wait_for([&](const std::string& s) { return s.find("Filter: gamm") != std::string::npos; });
  EXPECT_EQ(vm_order(s, ours), std::vector<std::string>{"gamma"}) << s;
  // Enter: gamma's details.
  t.keys("Enter");
  s = t.wait_for([&](const std::string& s) { return s.find("VM gamma") != std::string::npos; });
  EXPECT_NE(s.find("launcher qemu"), std::string::npos) << s;
  t.keys("Escape");
  t.keys("Escape");  // clears the filter
  s = t.wait_for([&](const std::string& s) { return vm_order(s, ours).size() == 4; });
  EXPECT_EQ(vm_order(s, ours).size(), 4u) << s;

  // A VM killed while top runs: its exit is the last event, with the signal.
  {
    auto eps = busy_vm("epsilon", {"BUSY_MB=8", "BUSY_THREADS=0"});
    s = t.wait_for(
        [&](const std::string& s) { return s.find("epsilon start") != std::string::npos; });
    EXPECT_NE(s.find("Last event: "), std::string::npos) << s;
    EXPECT_NE(s.find("epsilon start  pid " + std::to_string(eps->pid())), std::string::npos) << s;
    eps->signal(SIGKILL);
    eps->wait(5s);
  }
  s = t.wait_for([&](const std::string& s) { return s.find("epsilon exit") != std::string::npos; });
  EXPECT_NE(s.find("killed by signal 9"), std::string::npos) << s;

  // d: a new delay; p: pause (the header says so), p again: resume.
  t.keys("d 0 . 2 5 Enter");
  s = t.wait_for([&](const std::string& s) { return s.find("delay 0.25s") != std::string::npos; });
  EXPECT_NE(s.find("delay 0.25s"), std::string::npos) << s;
  t.keys("d x Enter");
  s = t.wait_for(
      [&](const std::string& s) { return s.find("expected seconds") != std::string::npos; });
  EXPECT_NE(s.find("delay \"x\": expected seconds between 0.1 and 3600"), std::string::npos) << s;
  t.keys("p");
  s = t.wait_for([&](const std::string& s) { return s.find("PAUSED") != std::string::npos; });
  EXPECT_NE(s.find("PAUSED"), std::string::npos) << s;
  t.keys("p");
  s = t.wait_for([&](const std::string& s) { return s.find("PAUSED") == std::string::npos; });
  EXPECT_EQ(s.find("PAUSED"), std::string::npos) << s;

  // Wider terminal: the optional columns come back.
  t.resize(140, 30);
  s = t.wait_for([&](const std::string& s) { return s.find("LAUNCHER") != std::string::npos; });
  EXPECT_NE(s.find("LAUNCHER"), std::string::npos) << s;
  EXPECT_NE(s.find("solo5-hvt"), std::string::npos) << s;

  // top attached to the tap and the bridge itself (no agent runs here); q removes it all.
  pid_t top_pid = std::stoi(capture("pgrep -P " + std::to_string(t.pane_pid()) + " -x vmscope"));
  const std::string programs = held_programs(top_pid);
  ASSERT_NE(programs, "");
  t.keys("q");
  std::string rc;
  for (int i = 0; i < 100 && rc.empty(); ++i, usleep(100000)) rc = read_text(status);
  EXPECT_EQ(rc, "0\n") << t.screen();
  EXPECT_EQ(attachments_after_exit(ns, programs), "");
}

// The words of the line after `title` whose first word is `first` (empty if none).
std::vector<std::string> table_line(const std::string& screen, const std::string& title,
                                    const std::string& first) {
  std::istringstream in(screen);
  bool in_table = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(title, 0) == 0) {
      in_table = true;
      continue;
    }
    std::istringstream ws(line);
    std::vector<std::string> w;
    for (std::string x; ws >> x;) w.push_back(x);
    if (in_table && !w.empty() && w[0] == first) return w;
  }
  return {};
}

// The detail view of the real test VM: the connections, answers and handshakes seen on
// its tap since top attached are exactly the client's (the vm_service counters).
TEST(TopScreen, DetailShowsTheServiceHealthOfARealVm) {
  vm_image();
  TempDir tmp("vmscope-top-health");
  Netns ns;
  add_bridge_with_tap(ns, "vsbr0", "10.99.7.1/24", "vmmtap0");
  Vm vm(ns, tmp.path, "vmmtap0", "svc1", "10.99.7.2/24");
  Tmux t(ns.exec(vmscope_bin() + " top -d 0.5 --filter svc1") + "; sleep 60", 100, 60);
  std::string s = t.wait_for([&](const std::string& s) { return rows_with_rates(s, {"svc1"}); });
  ASSERT_TRUE(rows_with_rates(s, {"svc1"})) << s;
  t.keys("Enter");
  s = t.wait_for([&](const std::string& s) { return s.find("VM svc1") != std::string::npos; });

  // Three HTTP 200s, one connection to a closed port (refused with a RST).
  for (int i = 0; i < 3; ++i) ns.must("curl -sS -f -m 10 -o /dev/null http://10.99.7.2/blob");
  EXPECT_NE(sh(ns.exec("curl -sS -m 5 -o /dev/null http://10.99.7.2:81/") + " 2>/dev/null"), 0);
  s = t.wait_for([&](const std::string& s) {
    auto http = table_line(s, "  HTTP answers", "total");
    auto tcp = table_line(s, "  TCP to it", "total");
    return http.size() == 6 && http[2] == "3" && tcp.size() == 6 && tcp[3] == "1";
  });
  std::printf("[ figures ] detail view:\n%s\n", s.c_str());
  // total: attempts accepted refused no-reply RSTs-out
  auto tcp = table_line(s, "  TCP to it", "total");
  ASSERT_EQ(tcp.size(), 6u) << s;
  EXPECT_EQ(tcp[1], "4") << s;
  EXPECT_EQ(tcp[2], "3") << s;
  EXPECT_EQ(tcp[3], "1") << s;
  EXPECT_EQ(tcp[4], "0") << s;
  EXPECT_GE(std::stoi(tcp[5]), 1) << s;
  // total: timed p50 p99 mean; the percentiles are bucket bounds.
  auto hs = table_line(s, "  handshake", "total");
  ASSERT_EQ(hs.size(), 5u) << s;
  EXPECT_EQ(hs[1], "3") << s;
  for (const std::string& p : {hs[2], hs[3]})
    EXPECT_TRUE(p.rfind("<=", 0) == 0 || p == ">1s") << p << "\n" << s;
  EXPECT_NE(hs[4], "-") << s;
  EXPECT_EQ(table_line(s, "  HTTP answers", "total"),
            (std::vector<std::string>{"total", "0", "3", "0", "0", "0"}))
      << s;
  t.keys("q");
}

// ---- next to a running agent ----// ---- next to a running agent ----

// nsenter keeps the host's mount namespace, so /sys/fs/bpf is the real one (ip netns
// exec remounts /sys without it): as on a host where vmscope.service runs.
std::vector<std::string> in_netns(const Netns& ns, std::vector<std::string> args) {
  args.insert(args.begin(), {"--net=/run/netns/" + ns.name(), vmscope_bin()});
  return args;
}

TEST(TopShared, ReadsTheRunningAgentsMapsInsteadOfAttaching) {
  Netns ns;
  add_bridge_with_tap(ns, "vsbr0", "10.99.6.1/24", "vmmtap0");
  Child holder(helper_bin("tap_holder"),
               {"--mem=64", "--net:service=vmmtap0", "--net-mac:service=02:00:00:00:00:02", "--",
                "/run/albatross/carol:web.img", "--name=web"},
               SpawnOptions{ns.name(), "solo5-hvt", {}, true});
  ASSERT_TRUE(holder.wait_line([](const std::string& l) { return l.rfind("ready ", 0) == 0; }, 5s));

  // Pins a killed agent left in a namespace that is gone: the next agent removes them
  // once they are an hour old. Recent ones stay (the namespace may be named only in
  // another mount namespace, its agent restarting).
  const std::string stale = "/sys/fs/bpf/vmscope/net-1", recent = "/sys/fs/bpf/vmscope/net-2";
  for (const std::string& dir : {stale, recent})
    must("mkdir -p " + dir + " && bpftool map create " + dir +
         "/net_stats type array key 4 value 4 entries 1 name vs_stale_test");
  must("touch -d '61 minutes ago' " + stale);

  Child agent("/usr/bin/nsenter", in_netns(ns, {"run", "--interval", "0.5", "--output", "-"}));
  ASSERT_TRUE(
      agent.wait_line([](const std::string& l) { return l.rfind("interface,", 0) == 0; }, 10s))
      << agent.stderr_text();
  const std::string agent_programs = held_programs(agent.pid());
  EXPECT_NE(sh("test -e " + stale), 0) << "stale pins survived";
  EXPECT_EQ(sh("test -e " + recent + "/net_stats"), 0) << "recent pins removed";
  must("rm -r " + recent);

  // A second agent in the same namespace runs, but leaves the first one's pins alone.
  const std::string pins = "/sys/fs/bpf/vmscope/net-" +
                           trim(capture("stat -L -c %i /run/netns/" + ns.name())) + "/net_stats";
  ASSERT_EQ(sh("test -e " + pins), 0) << pins;
  {
    Child second("/usr/bin/nsenter", in_netns(ns, {"run", "--interval", "0.2", "--count", "2",
                                                   "--attach", "clsact", "--output", "-"}));
    ASSERT_EQ(second.wait(20s), 0) << second.stderr_text();
    EXPECT_NE(second.stderr_text().find("another vmscope run holds this network namespace"),
              std::string::npos)
        << second.stderr_text();
  }
  EXPECT_EQ(sh("test -e " + pins), 0) << "the second agent removed the first one's pins";

  // A VM that starts before top does: top shows the agent's event for it.
  auto ev1 = busy_vm("ev1", {"BUSY_MB=8", "BUSY_THREADS=0"});
  ASSERT_TRUE(agent.wait_line(
      [](const std::string& l) {
        auto p = parse_point(l);
        return p && p->measurement == "vm_event" && p->tags["vm"] == "ev1" &&
               p->tags["event"] == "start";
      },
      10s))
      << agent.stderr_text();

  Child top("/usr/bin/nsenter", in_netns(ns, {"top", "-b", "-n", "2", "-d", "1"}));
  ASSERT_TRUE(top.wait_line([](const std::string& l) { return l.rfind("web ", 0) == 0; }, 10s))
      << top.stderr_text();
  ev1->signal(SIGKILL);
  // top holds no program of its own on the tap: only its task iterator.
  std::string names;
  for (std::istringstream ids(held_programs(top.pid())); ids.good();) {
    std::string id;
    ids >> id;
    if (!id.empty())
      names += capture("bpftool prog show id " + id + " | head -1 | awk '{print $4}'");
  }
  EXPECT_EQ(names.find("vs_tc_"), std::string::npos) << names;
  // What the VM sends in top's second interval is counted by the agent's programs.
  const Mac br_mac = mac_of(ns, "vsbr0");
  ns.must("ip neigh add 10.99.6.2 lladdr 02:00:00:00:00:02 dev vsbr0 nud permanent");
  uint64_t sent = 0;
  for (int i = 0; i < 200; ++i) {
    auto f = ipv4_frame(br_mac, kVmMac, ip("10.99.6.2"), ip("10.99.6.1"), 17, 1000);
    sent += f.size();
    inject(holder, f);
  }
  ASSERT_EQ(top.wait(10s), 0) << top.stderr_text();
  auto snaps = parse_batch(top.lines());
  ASSERT_EQ(snaps.size(), 2u) << dump(top.lines());
  EXPECT_NE(snaps[1].title.find("reading vmscope run (pid " + std::to_string(agent.pid()) + ")"),
            std::string::npos)
      << snaps[1].title;
  const std::string all = dump(top.lines());
  EXPECT_NE(all.find("Last event: "), std::string::npos) << all;
  EXPECT_NE(all.find("ev1 start  pid " + std::to_string(ev1->pid())), std::string::npos) << all;
  EXPECT_NE(all.find("ev1 exit   pid " + std::to_string(ev1->pid()) + " killed by signal 9"),
            std::string::npos)
      << all;
  const auto& row = snaps[1].rows.at("web");
  EXPECT_EQ(row.at("LAUNCHER"), "solo5-hvt");
  const double tx = si(row.at("TXbit/s")) * snaps[1].interval_s / 8;
  EXPECT_NEAR(tx, static_cast<double>(sent), 0.02 * static_cast<double>(sent)) << dump(top.lines());
  EXPECT_EQ(held_programs(agent.pid()), agent_programs) << "the agent's programs changed";

  // Once the agent is gone, its per-run pins are too (it keeps its counters for the next
  // one), and top falls back to its own programs.
  agent.signal(SIGTERM);
  ASSERT_EQ(agent.wait(10s), 0) << agent.stderr_text();
  const std::string events_pin = pins.substr(0, pins.rfind('/')) + "/recent_events";
  EXPECT_NE(sh("test -e " + events_pin), 0) << events_pin;
  EXPECT_EQ(sh("test -e " + pins), 0) << "counters not kept: " << pins;
  Child again("/usr/bin/nsenter", in_netns(ns, {"top", "-b", "-n", "1", "-d", "0.5"}));
  ASSERT_EQ(again.wait(10s), 0) << again.stderr_text();
  auto snaps2 = parse_batch(again.lines());
  ASSERT_EQ(snaps2.size(), 1u) << dump(again.lines());
  EXPECT_NE(snaps2[0].title.find("own programs"), std::string::npos) << snaps2[0].title;
}

}  // namespace
}  // namespace vmscope::test
