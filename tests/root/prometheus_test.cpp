// Root test: Debian's real Prometheus (2.42) scrapes the agent's /metrics every second
// while a real qemu guest behind a tap serves downloads. What Prometheus stored must add
// up to the tap's own byte counters: increase() over the run equals the tap's delta within
// 2%, the scraped text passes `promtool check metrics`, and a VM that exits leaves
// /metrics (and Prometheus marks its series stale).
//
// The window of increase() is chosen from the samples Prometheus holds: it starts at the
// last scrape before the traffic and ends at the first one after it, so that increase()
// has nothing to extrapolate (Prometheus stretches the change it sees to the edges of the
// window when samples do not sit on them).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "common/unique_fd.h"
#include "json.h"
#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test {
namespace {

constexpr int kAgentPort = 19847;
constexpr int kPrometheusPort = 19090;
const std::string kBridge = "vsbr0";
const std::string kTap = "vmmtap0";
const std::string kVm = "web1";
const std::string kVmAddr = "10.99.3.2";
constexpr uint64_t kBlobBytes = 1048576;
constexpr int kDownloads = 5;

std::string agent_url() {
  return "http://127.0.0.1:" + std::to_string(kAgentPort);
}

double now_s() {
  return static_cast<double>(now_ns()) / 1e9;
}

struct TapBytes {
  uint64_t rx = 0, tx = 0;  // the tap's: rx = VM -> host (the VM transmits)
};

TapBytes read_tap(const Netns& ns) {
  const std::string d = "/sys/class/net/" + kTap + "/statistics/";
  std::stringstream ss(ns.capture("cat " + d + "rx_bytes " + d + "tx_bytes"));
  TapBytes b;
  if (!(ss >> b.rx >> b.tx)) throw std::runtime_error("cannot read the counters of " + kTap);
  return b;
}

struct Sample {
  double t = 0;
  double v = 0;
};

// prometheus in the namespace, on loopback, scraping the agent every second; killed (and
// its data removed with the test's directory) on destruction.
class Prometheus {
 public:
  Prometheus(const Netns& ns, const std::string& dir) : ns_(ns) {
    const std::string conf = dir + "/prometheus.yml";
    std::ofstream(conf) << "global:\n"
                           "  scrape_interval: 1s\n"
                           "  scrape_timeout: 1s\n"
                           "scrape_configs:\n"
                           "  - job_name: vmscope\n"
                           "    static_configs:\n"
                           "      - targets: ['127.0.0.1:"
                        << kAgentPort << "']\n";
    child_ = std::make_unique<Child>(
        "/usr/bin/prometheus",
        std::vector<std::string>{
            "--config.file=" + conf, "--storage.tsdb.path=" + dir + "/data",
            "--web.listen-address=127.0.0.1:" + std::to_string(kPrometheusPort),
            "--storage.tsdb.retention.time=1h", "--log.level=warn"},
        SpawnOptions{ns.name(), "", {}, false});
    for (int i = 0; i < 150; ++i) {
      if (ns_.capture("curl -s -o /dev/null -w '%{http_code}' " + base() + "/-/ready || true") ==
          "200")
        return;
      usleep(100000);
    }
    throw std::runtime_error("prometheus not ready after 15 s:\n" + child_->stderr_text());
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(kPrometheusPort); }

  // The API's data.result of an instant query at time t (0: now).
  Json query(const std::string& q, double t = 0) const {
    std::string cmd =
        "curl -sS -m 10 -G " + base() + "/api/v1/query --data-urlencode " + shq("query=" + q);
    if (t > 0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3f", t);
      cmd += " --data-urlencode time=" + std::string(buf);
    }
    const Json doc = parse_json(ns_.capture(cmd));
    if (doc.str("status") != "success")
      throw std::runtime_error("prometheus query " + q + ": " + doc.str("error"));
    return *doc.get("data")->get("result");
  }

  // The single series' value of an instant query, or nullopt when there is none.
  std::optional<double> scalar(const std::string& q, double t = 0) const {
    const Json r = query(q, t);
    if (r.items.empty()) return std::nullopt;
    if (r.items.size() != 1) throw std::runtime_error(q + ": more than one series");
    return std::stod(r.items[0].get("value")->items[1].text);
  }

  // The raw samples of a series over the last `range` before t.
  std::vector<Sample> samples(const std::string& selector, const std::string& range,
                              double t) const {
    const Json r = query(selector + "[" + range + "]", t);
    if (r.items.size() != 1)
      throw std::runtime_error(selector + ": " + std::to_string(r.items.size()) + " series");
    std::vector<Sample> out;
    for (const Json& v : r.items[0].get("values")->items)
      out.push_back({std::stod(v.items[0].text), std::stod(v.items[1].text)});
    return out;
  }

  // GET of an API path with one match[] selector; the raw body.
  std::string get(const std::string& path, const std::string& match) const {
    return ns_.capture("curl -sS -m 10 -G " + base() + path + " --data-urlencode " +
                       shq("match[]=" + match));
  }

  std::string log() const { return child_->stderr_text(); }

 private:
  const Netns& ns_;
  std::unique_ptr<Child> child_;
};

// Metrics of the agent as a scraper without OpenMetrics sees them.
std::string scrape(const Netns& ns) {
  return ns.capture("curl -sS -m 5 " + agent_url() + "/metrics");
}

// Grafana's substitution of a multi-value variable holding one value, for Prometheus:
// regex characters escaped (prometheusSpecialRegexEscape), as the query text holds them.
std::string grafana_regex(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (std::string_view("\\[]$^*+?.()|{}").find(c) != std::string_view::npos) out += "\\\\";
    out += c;
  }
  return out;
}

std::string substitute(std::string q, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars)
    for (size_t at; (at = q.find(k)) != std::string::npos;) q.replace(at, k.size(), v);
  return q;
}

// Every query of both Prometheus dashboards and every variable, with Grafana's
// substitution (host = the agent's instance, vm, bridge), answers with data at `t`.
void check_dashboards(const Prometheus& prom, double t, const std::string& bridge) {
  const std::map<std::string, std::string> vars = {
      {"$__rate_interval", "4s"},
      {"$__interval", "1s"},
      {"$__range", "1m"},
      {"$host", grafana_regex("127.0.0.1:" + std::to_string(kAgentPort))},
      {"$vm", grafana_regex(kVm)},
      {"$bridge", grafana_regex(bridge)}};
  int queries = 0;
  for (const std::string name : {"vm-overview", "host"}) {
    const Json d = parse_json(read_text(source_dir() + "/dashboards/prometheus/" + name + ".json"));
    for (const Json& v : d.get("templating")->get("list")->items) {
      // label_values(SELECTOR, LABEL)
      const std::string def = substitute(v.str("definition"), vars);
      const size_t open = def.find('('), comma = def.rfind(','), close = def.rfind(')');
      ASSERT_TRUE(open != std::string::npos && comma != std::string::npos) << def;
      const std::string selector = def.substr(open + 1, comma - open - 1);
      std::string label = def.substr(comma + 1, close - comma - 1);
      label.erase(0, label.find_first_not_of(' '));
      const Json values = parse_json(prom.get("/api/v1/label/" + label + "/values", selector));
      EXPECT_FALSE(values.get("data")->items.empty())
          << name << " variable " << v.str("name") << ": " << def;
    }
    for (const Json& p : d.get("panels")->items) {
      const Json* targets = p.get("targets");
      if (!targets) continue;
      for (const Json& target : targets->items) {
        const std::string q = substitute(target.str("expr"), vars);
        ++queries;
        EXPECT_FALSE(prom.query(q, t).items.empty())
            << name << " \"" << p.str("title") << "\" " << target.str("refId") << ": " << q;
      }
    }
  }
  std::printf("[ figures ] %d dashboard queries answered by prometheus\n", queries);
}

struct Window {
  Sample first, last;
  size_t between = 0;  // samples from first to last, both included
};

// The last sample at or before `from` and the first at or after `to`.
Window window(const std::vector<Sample>& s, double from, double to) {
  Window w;
  bool have_first = false, have_last = false;
  for (const Sample& x : s) {
    if (x.t <= from) {
      w.first = x;
      have_first = true;
    }
    if (x.t >= to && !have_last) {
      w.last = x;
      have_last = true;
    }
  }
  if (!have_first || !have_last) throw std::runtime_error("no samples around the traffic");
  for (const Sample& x : s) w.between += x.t >= w.first.t && x.t <= w.last.t;
  return w;
}

// increase() over exactly [first, last] (a range ending at `last` reaching back to
// `first`): nothing to extrapolate.
double increase_over(const Prometheus& prom, const std::string& selector, const Window& w) {
  const long long ms = std::llround((w.last.t - w.first.t) * 1000);
  auto v = prom.scalar("increase(" + selector + "[" + std::to_string(ms) + "ms])", w.last.t);
  if (!v) throw std::runtime_error("increase() of " + selector + ": no result");
  return *v;
}

TEST(Prometheus, ScrapesTheAgentAndIncreaseEqualsTheTapDelta) {
  vm_image();
  TempDir tmp("vmscope-prometheus");
  Netns ns;
  add_bridge_with_tap(ns, kBridge, "10.99.3.1/24", kTap);
  auto vm = std::make_unique<Vm>(ns, tmp.path, kTap, kVm, kVmAddr + "/24");

  Child agent(vmscope_bin(),
              {"run", "--interval", "1", "--listen", "127.0.0.1:" + std::to_string(kAgentPort),
               "--output", "-", "--spool-dir", tmp.path + "/spool"},
              SpawnOptions{ns.name(), "", {}, false});
  const std::string tx_selector = "vmscope_vm_network_transmit_bytes_total{vm=\"" + kVm + "\"}";
  const std::string rx_selector = "vmscope_vm_network_receive_bytes_total{vm=\"" + kVm + "\"}";
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = sh(ns.exec("curl -s -m 2 " + agent_url() + "/metrics | grep -q '^" +
                        "vmscope_vm_network_transmit_bytes_total{vm=\"" + kVm + "\"'")) == 0;
    if (!served) usleep(100000);
  }
  ASSERT_TRUE(served) << "no " << tx_selector << " on /metrics\n" << agent.stderr_text();

  Prometheus prom(ns, tmp.path);
  // Prometheus scrapes it: a few samples before the traffic.
  bool scraped = false;
  for (int i = 0; i < 100 && !scraped; ++i) {
    auto n = prom.scalar("count_over_time(" + tx_selector + "[1m])");
    scraped = n && *n >= 3;
    if (!scraped) usleep(200000);
  }
  ASSERT_TRUE(scraped) << "prometheus holds no samples of " << tx_selector << "\n" << prom.log();
  EXPECT_EQ(prom.scalar("up{job=\"vmscope\"}"), 1.0);

  const TapBytes base = read_tap(ns);
  const double t_base = now_s();
  for (int i = 0; i < kDownloads; ++i) {
    const std::string got = ns.capture(
        "curl -sS -f -m 10 -o /dev/null -w '%{size_download}' http://" + kVmAddr + "/blob");
    ASSERT_EQ(got, std::to_string(kBlobBytes)) << "download " << i + 1 << "\nguest console:\n"
                                               << vm->console_tail();
    usleep(1200000);  // the traffic over several scrapes
  }
  const TapBytes end = read_tap(ns);
  const double t_end = now_s();
  const uint64_t d_tx = end.rx - base.rx;  // VM -> host: the VM transmits
  const uint64_t d_rx = end.tx - base.tx;
  ASSERT_GE(d_tx, kDownloads * kBlobBytes);

  // Until Prometheus has scraped after the traffic.
  std::vector<Sample> tx, rx;
  for (int i = 0; i < 50; ++i) {
    tx = prom.samples(tx_selector, "5m", now_s());
    if (!tx.empty() && tx.back().t >= t_end + 0.5) break;
    usleep(200000);
  }
  const double t_query = now_s();
  tx = prom.samples(tx_selector, "5m", t_query);
  rx = prom.samples(rx_selector, "5m", t_query);
  const Window wt = window(tx, t_base, t_end);
  const Window wr = window(rx, t_base, t_end);
  const double span = wt.last.t - wt.first.t;
  // Scraped every second through the run.
  EXPECT_GE(double(wt.between), span * 0.8) << wt.between << " samples over " << span << " s";

  const double inc_tx = increase_over(prom, tx_selector, wt);
  const double inc_rx = increase_over(prom, rx_selector, wr);
  std::printf(
      "[ figures ] over %.1f s (%zu scrapes): tap delta VM->host %llu B, increase(transmit) "
      "%.0f B (%.3f%%), stored samples' difference %.0f B; host->VM %llu B, "
      "increase(receive) %.0f B (%.3f%%)\n",
      span, wt.between, (unsigned long long)d_tx, inc_tx,
      100.0 * (inc_tx - double(d_tx)) / double(d_tx), wt.last.v - wt.first.v,
      (unsigned long long)d_rx, inc_rx, 100.0 * (inc_rx - double(d_rx)) / double(d_rx));
  EXPECT_NEAR(inc_tx, double(d_tx), 0.02 * double(d_tx));
  EXPECT_NEAR(inc_rx, double(d_rx), 0.02 * double(d_rx));
  EXPECT_NEAR(wt.last.v - wt.first.v, double(d_tx), 0.02 * double(d_tx));

  check_dashboards(prom, t_query, kBridge);
  // The VM did not restart: its start time never moved.
  EXPECT_EQ(prom.scalar("changes(vmscope_vm_start_time_seconds{vm=\"" + kVm + "\"}[5m])", t_query),
            0.0);

  // promtool accepts what a plain scraper gets; Prometheus itself was served OpenMetrics.
  const std::string check = ns.capture("sh -c " + shq("curl -sS -m 5 " + agent_url() +
                                                      "/metrics | promtool check metrics 2>&1; " +
                                                      "echo \"exit status $?\""));
  EXPECT_EQ(check, "exit status 0\n") << check;  // and no lint message
  const std::string om_type = ns.capture(
      "curl -sS -m 5 -o /dev/null -w '%{content_type}' -H " +
      shq("Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
          "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1") +
      " " + agent_url() + "/metrics");
  EXPECT_EQ(om_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(prom.scalar("up{job=\"vmscope\"}"), 1.0);
  EXPECT_EQ(prom.scalar("count(vmscope_build_info)"), 1.0);
  EXPECT_GT(prom.scalar("vmscope_tick_duration_seconds_count").value_or(0), 3.0);
  auto cpu = prom.scalar("sum(vmscope_vm_cpu_seconds_total{vm=\"" + kVm + "\"})");
  ASSERT_TRUE(cpu) << "no CPU time of " << kVm;
  EXPECT_GT(*cpu, 0.0);

  // The VM exits: its series leave /metrics at the next tick, and Prometheus marks them
  // stale at the next scrape.
  const std::string cpu_line = "vmscope_vm_cpu_seconds_total{vm=\"" + kVm + "\"";
  ASSERT_NE(scrape(ns).find(cpu_line), std::string::npos);
  vm.reset();
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    gone = scrape(ns).find(cpu_line) == std::string::npos;
    if (!gone) usleep(200000);
  }
  EXPECT_TRUE(gone) << "the exited VM is still on /metrics";
  const double t_gone = now_s();
  bool stale = false;
  for (int i = 0; i < 30 && !stale; ++i) {
    usleep(200000);
    stale = !prom.scalar("sum(vmscope_vm_cpu_seconds_total{vm=\"" + kVm + "\"})", 0) &&
            now_s() > t_gone + 1;
  }
  EXPECT_TRUE(stale) << "prometheus still has a current value for the exited VM";

  agent.signal(SIGTERM);
  const int st = agent.wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();
}

// A port already in use costs /metrics only: one error line, and the line-protocol output
// goes on tick after tick.
TEST(Prometheus, APortInUseIsOneLineAndTheOtherOutputsKeepWorking) {
  Netns ns;
  UniqueFd taken(ns.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC));
  ASSERT_TRUE(taken.valid());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kAgentPort);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(::listen(taken.get(), 1), 0);
  TempDir tmp("vmscope-prometheus-busy");
  Child agent(vmscope_bin(),
              {"run", "--interval", "0.2", "--count", "5", "--listen",
               "127.0.0.1:" + std::to_string(kAgentPort), "--output", "-", "--spool-dir",
               tmp.path + "/spool"},
              SpawnOptions{ns.name(), "", {}, false});
  const int st = agent.wait(30s);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();
  const std::string err = agent.stderr_text();
  const std::string line = "metrics endpoint (--listen 127.0.0.1:" + std::to_string(kAgentPort) +
                           "): bind: Address already in use: /metrics is not served";
  const size_t at = err.find(line);
  EXPECT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.find(line, at + 1), std::string::npos) << "said more than once:\n" << err;
  size_t ticks = 0;
  for (const std::string& l : agent.lines()) ticks += l.rfind("vmscope ", 0) == 0;
  EXPECT_EQ(ticks, 5u);
}

}  // namespace
}  // namespace vmscope::test
