// The Prometheus endpoint without root: the exposition (escaping, HELP/TYPE of every
// family, _total, histograms, both formats), the families derived from the contract's
// counter lists, and the HTTP server on loopback (formats, errors, a port in use, a hung
// scraper that delays neither a publish nor another scrape).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "output/metrics_server.h"
#include "output/prometheus_metrics.h"
#include "output/prometheus_text.h"

namespace vmscope {
namespace {

using namespace std::chrono_literals;

// ---- escaping -----------------------------------------------------------------------

TEST(PrometheusText, LabelValuesEscaped) {
  const struct {
    std::string in, out;
  } cases[] = {
      {"web1", "web1"},
      {"a\\b", "a\\\\b"},
      {"say \"hi\"", "say \\\"hi\\\""},
      {"two\nlines", "two\\nlines"},
      {"tab\tstays", "tab\tstays"},
      {"caf\xC3\xA9", "caf\xC3\xA9"},                            // UTF-8 as it is
      {"\xE2\x82\xAC 5", "\xE2\x82\xAC 5"},                      // 3-byte sequence
      {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},                  // 4-byte sequence
      {"bad\xFFname", "bad\xEF\xBF\xBDname"},                    // not UTF-8: U+FFFD
      {"cut\xC3", "cut\xEF\xBF\xBD"},                            // truncated sequence
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                  // overlong
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // surrogate
  };
  for (const auto& c : cases) {
    std::string out;
    append_label_value(out, c.in);
    EXPECT_EQ(out, c.out) << c.in;
  }
}

TEST(PrometheusText, HelpEscapedPerFormat) {
  std::string prom, om;
  append_help(prom, "a \\ \"quoted\"\nline", ExpositionFormat::kPrometheus);
  append_help(om, "a \\ \"quoted\"\nline", ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(prom, "a \\\\ \"quoted\"\\nline");
  EXPECT_EQ(om, "a \\\\ \\\"quoted\\\"\\nline");
}

TEST(PrometheusText, Numbers) {
  const struct {
    double v;
    std::string text;
  } cases[] = {{0, "0"},
               {1, "1"},
               {0.001, "0.001"},
               {2.5, "2.5"},
               {1e-05, "1e-05"},
               {1.0 / 0.0, "+Inf"},
               {-1.0 / 0.0, "-Inf"}};
  for (const auto& c : cases) {
    std::string out;
    append_number(out, c.v);
    EXPECT_EQ(out, c.text);
  }
  std::string nan;
  append_number(nan, 0.0 / 0.0);
  EXPECT_EQ(nan, "NaN");
}

TEST(PrometheusText, NegotiatesOpenMetricsOnlyWhenAsked) {
  const struct {
    std::string accept;
    ExpositionFormat f;
  } cases[] = {
      {"", ExpositionFormat::kPrometheus},
      {"*/*", ExpositionFormat::kPrometheus},
      {"text/plain;version=0.0.4", ExpositionFormat::kPrometheus},
      // Prometheus 2.42's default scrape header
      {"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
       "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
       ExpositionFormat::kOpenMetrics},
      {"text/plain, application/openmetrics-text; version=1.0.0; q=0.2",
       ExpositionFormat::kOpenMetrics},
      {"application/openmetrics-text;q=0", ExpositionFormat::kPrometheus},
      {"application/openmetrics-text; q=0.0, text/plain", ExpositionFormat::kPrometheus},
  };
  for (const auto& c : cases) EXPECT_EQ(negotiate_format(c.accept), c.f) << c.accept;
  EXPECT_EQ(content_type(ExpositionFormat::kPrometheus),
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(content_type(ExpositionFormat::kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(PrometheusText, CounterGaugeInfoHistogramSummaryInBothFormats) {
  const auto write = [](ExpositionFormat f) {
    std::string out;
    Exposition e(f, out);
    e.family("x_bytes", MetricType::kCounter, "Bytes.").value({{"vm", "a"}}, uint64_t{7});
    e.family("x_up", MetricType::kGauge, "Up.").value({}, 1.5);
    e.family("x_build", MetricType::kInfo, "Build.").value({{"version", "1"}}, uint64_t{1});
    const Bucket b[] = {{0.1, 2}, {1, 3}};
    e.family("x_seconds", MetricType::kHistogram, "Time.").histogram({{"vm", "a"}}, b, 4, 2.5);
    e.family("x_wait_seconds", MetricType::kSummary, "Wait.").summary({}, 3, 0.75);
    e.finish();
    return out;
  };
  EXPECT_EQ(write(ExpositionFormat::kPrometheus),
            "# HELP x_bytes_total Bytes.\n# TYPE x_bytes_total counter\n"
            "x_bytes_total{vm=\"a\"} 7\n"
            "# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1.5\n"
            "# HELP x_build_info Build.\n# TYPE x_build_info gauge\n"
            "x_build_info{version=\"1\"} 1\n"
            "# HELP x_seconds Time.\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{vm=\"a\",le=\"0.1\"} 2\nx_seconds_bucket{vm=\"a\",le=\"1\"} 3\n"
            "x_seconds_bucket{vm=\"a\",le=\"+Inf\"} 4\nx_seconds_count{vm=\"a\"} 4\n"
            "x_seconds_sum{vm=\"a\"} 2.5\n"
            "# HELP x_wait_seconds Wait.\n# TYPE x_wait_seconds summary\n"
            "x_wait_seconds_count 3\nx_wait_seconds_sum 0.75\n");
  EXPECT_EQ(write(ExpositionFormat::kOpenMetrics),
            "# HELP x_bytes Bytes.\n# TYPE x_bytes counter\nx_bytes_total{vm=\"a\"} 7\n"
            "# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1.5\n"
            "# HELP x_build Build.\n# TYPE x_build info\nx_build_info{version=\"1\"} 1\n"
            "# HELP x_seconds Time.\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{vm=\"a\",le=\"0.1\"} 2\nx_seconds_bucket{vm=\"a\",le=\"1\"} 3\n"
            "x_seconds_bucket{vm=\"a\",le=\"+Inf\"} 4\nx_seconds_count{vm=\"a\"} 4\n"
            "x_seconds_sum{vm=\"a\"} 2.5\n"
            "# HELP x_wait_seconds Wait.\n# TYPE x_wait_seconds summary\n"
            "x_wait_seconds_count 3\nx_wait_seconds_sum 0.75\n# EOF\n");
}

// ---- a whole snapshot --------------------------------------------------------------

// A tick as the engine would give it: two VMs on taps (one with a name that needs every
// escape), a bridge, distinct counter values so that each can be found.
struct Fixture {
  std::string vm_a = "web1", vm_b = "we\"ird\\name\nx\xFF", tap_a = "vmmtap0", tap_b = "vmmtap1",
              bridge = "br0", launcher = "qemu";
  TickSample sample;
  SelfMetrics self;

  Fixture() {
    sample.timestamp_ns = int64_t{1700000000} * 1000000000;
    NetSnapshot net;
    for (int i = 0; i < 2; ++i) {
      TapSample t;
      t.ifname = i ? tap_b : tap_a;
      t.vm = i ? vm_b : vm_a;
      t.bridge = bridge;
      t.launcher = launcher;
      t.mtu = 1500;
      t.kernel_known = true;
      t.kernel.rx_bytes = 1000 + i;  // VM -> host: the VM transmits
      t.kernel.tx_bytes = 2000 + i;  // host -> VM: the VM receives
      t.kernel.rx_packets = 10;
      t.kernel.tx_packets = 20;
      t.vm_to_host.l4_bytes[VS_L4_TCP] = 111;
      t.host_to_vm.l4_bytes[VS_L4_UDP] = 222;
      t.host_to_vm.tcp_syns = 3;
      t.service.tcp_syn_in = 41;
      t.service.handshake_count = 5;
      t.service.handshake_sum_us = 2500;
      t.service.handshake_le_100us = 1;
      t.service.handshake_le_1ms = 4;
      t.service.handshake_le_10ms = 5;
      t.service.handshake_le_100ms = 5;
      t.service.handshake_le_1s = 5;
      t.service.connect_count = 2;
      t.service.connect_sum_us = 3000;
      t.service.http_5xx = 9;
      net.taps.push_back(t);
    }
    BridgeSample b;
    b.name = bridge;
    b.taps = 2;
    b.host_tx.bytes = 777;
    net.bridges.push_back(b);
    sample.net = net;
    std::vector<VmResources> vms(2);
    vms[0].vm = vm_a;
    vms[1].vm = vm_b;
    for (VmResources& v : vms) {
      v.launcher = launcher;
      v.processes = 1;
      v.threads = 3;
      v.counters.utime_ns = 1500000000;
      v.counters.stime_ns = 250000000;
      v.counters.maj_flt = 6;
      v.counters.run_delay_ns = 2000000;
      v.counters.read_bytes = 4096;
      v.rss_pages = 10;
      v.uptime_s = 100;
    }
    sample.vms = vms;
    self.tick_ns = 3000000;
    self.bpf_stats = true;
    self.programs.push_back({"vs_tc_ingress", 5, 6000});
  }

  std::string render(ExpositionFormat f, const TickHistogram& ticks = {}) const {
    std::string out;
    render_metrics(*retain_snapshot(sample, self, TaskCounterSupport{}, ticks), f, out);
    return out;
  }
};

struct Family {
  std::string type, help;
  int samples = 0;
};

// Checks what both formats require of the structure and returns the families: HELP then
// TYPE before every family, each family once, its samples right after it and named as its
// type allows, counters' _total as the format wants it, valid names, OpenMetrics' # EOF.
std::map<std::string, Family> check_structure(const std::string& text, ExpositionFormat f) {
  const bool om = f == ExpositionFormat::kOpenMetrics;
  const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  const std::regex sample_re(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
  const std::regex label_re(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$))re");
  std::map<std::string, Family> families;
  std::string current, pending_help;
  std::istringstream in(text);
  std::string line;
  bool eof = false;
  while (std::getline(in, line)) {
    EXPECT_FALSE(eof) << "after # EOF: " << line;
    if (line == "# EOF") {
      eof = true;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string rest = line.substr(7);
      pending_help = rest.substr(0, rest.find(' '));
      EXPECT_TRUE(std::regex_match(pending_help, name_re)) << line;
      EXPECT_EQ(families.count(pending_help), 0u) << "family twice: " << line;
      families[pending_help].help = rest.substr(rest.find(' ') + 1);
      EXPECT_FALSE(families[pending_help].help.empty()) << line;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream ss(line.substr(7));
      std::string name, type;
      ss >> name >> type;
      EXPECT_EQ(name, pending_help) << "TYPE without its HELP right before: " << line;
      families[name].type = type;
      current = name;
      pending_help.clear();
      if (type == "counter") {
        EXPECT_EQ(name.ends_with("_total"), !om) << line;
      }
      continue;
    }
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, sample_re)) << line;
    if (m.empty()) continue;
    const std::string sample = m[1], labels = m[3];
    Family& fam = families[current];
    std::set<std::string> allowed;
    if (fam.type == "counter")
      allowed = {om ? current + "_total" : current};
    else if (fam.type == "histogram")
      allowed = {current + "_bucket", current + "_count", current + "_sum"};
    else if (fam.type == "summary")
      allowed = {current + "_count", current + "_sum"};
    else if (fam.type == "info")
      allowed = {current + "_info"};
    else
      allowed = {current};
    EXPECT_TRUE(allowed.count(sample))
        << "sample " << sample << " in family " << current << " (" << fam.type << ")";
    ++fam.samples;
    // Labels: name="escaped value", comma-separated, nothing else.
    std::string rest = labels;
    while (!rest.empty()) {
      std::smatch lm;
      const bool ok = std::regex_search(rest, lm, label_re) && lm.position(0) == 0;
      EXPECT_TRUE(ok) << "labels of " << line;
      if (!ok) break;
      rest = lm.suffix();
    }
    EXPECT_NE(m[4], "") << line;
  }
  EXPECT_EQ(eof, om);
  return families;
}

TEST(PrometheusMetrics, EveryFamilyHasHelpAndTypeInBothFormats) {
  Fixture fx;
  for (ExpositionFormat f : {ExpositionFormat::kPrometheus, ExpositionFormat::kOpenMetrics}) {
    const std::string text = fx.render(f);
    const auto families = check_structure(text, f);
    EXPECT_GT(families.size(), 60u);
    for (const auto& [name, fam] : families) {
      EXPECT_FALSE(fam.type.empty()) << name;
      EXPECT_GT(fam.samples, 0) << name << " has no sample in the fixture";
      EXPECT_EQ(name.rfind("vmscope_", 0), 0u) << name;
    }
  }
}

TEST(PrometheusMetrics, NamedFamiliesCarryTheSample) {
  Fixture fx;
  const std::string t = fx.render(ExpositionFormat::kPrometheus);
  const auto has = [&](const std::string& line) {
    EXPECT_NE(t.find("\n" + line + "\n"), std::string::npos) << line;
  };
  // Kernel counters from the VM's point of view: it receives what the tap transmits.
  has("vmscope_vm_network_receive_bytes_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"} 2000");
  has("vmscope_vm_network_transmit_bytes_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"} 1000");
  has("vmscope_vm_network_transmit_bytes_total{vm=\"we\\\"ird\\\\name\\nx\xEF\xBF\xBD\","
      "bridge=\"br0\",tap=\"vmmtap1\"} 1001");
  has("vmscope_vm_network_receive_packets_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"} 20");
  has("vmscope_vm_network_receive_errors_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"} 0");
  has("vmscope_vm_network_transmit_drops_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"} 0");
  has("vmscope_vm_net_l4_bytes_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\","
      "direction=\"transmit\",protocol=\"tcp\"} 111");
  has("vmscope_vm_net_l4_bytes_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\","
      "direction=\"receive\",protocol=\"udp\"} 222");
  has("vmscope_vm_net_tcp_syns_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\","
      "direction=\"receive\"} 3");
  has("vmscope_bridge_net_bytes_total{bridge=\"br0\",path=\"host_tx\"} 777");
  has("vmscope_bridge_taps{bridge=\"br0\"} 2");
  has("vmscope_vm_cpu_seconds_total{vm=\"web1\",mode=\"user\"} 1.5");
  has("vmscope_vm_cpu_seconds_total{vm=\"web1\",mode=\"system\"} 0.25");
  has("vmscope_vm_page_faults_total{vm=\"web1\",type=\"major\"} 6");
  has("vmscope_vm_cpu_run_delay_seconds_total{vm=\"web1\"} 0.002");
  has("vmscope_vm_io_read_bytes_total{vm=\"web1\"} 4096");
  has("vmscope_vm_memory_rss_bytes{vm=\"web1\"} " +
      std::to_string(10 * static_cast<uint64_t>(sysconf(_SC_PAGESIZE))));
  has("vmscope_vm_start_time_seconds{vm=\"web1\"} 1699999900");
  has("vmscope_vm_service_tcp_syn_in_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"} 41");
  has("vmscope_vm_service_http_5xx_total{vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"} 9");
  has("vmscope_bpf_program_runs_total{program=\"vs_tc_ingress\"} 5");
  const BuildInfo b = build_info();
  EXPECT_FALSE(b.version.empty());
  has("vmscope_build_info{version=\"" + std::string(b.version) + "\",revision=\"" +
      std::string(b.revision) + "\",bpf_types_kernel=\"" + std::string(b.bpf_types_kernel) +
      "\"} 1");
}

// x_le_1ms, x_count, x_sum_us: x.
std::string latency_stem(const std::string& f) {
  if (size_t le = f.find("_le_"); le != std::string::npos) return f.substr(0, le);
  if (f.ends_with("_count")) return f.substr(0, f.size() - 6);
  if (f.ends_with("_sum_us")) return f.substr(0, f.size() - 7);
  return f;
}

// The families of the counter lists come from the lists: every field of VS_NET_COUNTERS,
// VS_SERVICE_COUNTERS and VS_TASK_IO_COUNTERS is found in a family named after it.
TEST(PrometheusMetrics, ListsExpandToFamilies) {
  Fixture fx;
  const std::string t = fx.render(ExpositionFormat::kPrometheus);
  const auto family = [&](const std::string& name) {
    return t.find("# TYPE " + name + " ") != std::string::npos;
  };
#define NET_(field)                                                 \
  EXPECT_TRUE(family("vmscope_vm_net_" #field "_total")) << #field; \
  EXPECT_TRUE(family("vmscope_bridge_net_" #field "_total")) << #field;
#define NET_ARRAY_(field, n) NET_(field)
  VS_NET_COUNTERS(NET_, NET_ARRAY_)
#undef NET_
#undef NET_ARRAY_
#define IO_(field, own, dead) EXPECT_TRUE(family("vmscope_vm_io_" #field "_total")) << #field;
  VS_TASK_IO_COUNTERS(IO_)
#undef IO_
  // A service field is a counter of its own, or part of a latency family.
  int latency_fields = 0;
#define SERVICE_(field)                                                                       \
  if (!family("vmscope_vm_service_" #field "_total")) {                                       \
    EXPECT_TRUE(family("vmscope_vm_service_" + latency_stem(#field) + "_seconds")) << #field; \
    ++latency_fields;                                                                         \
  }
  VS_SERVICE_COUNTERS(SERVICE_)
#undef SERVICE_
  EXPECT_EQ(latency_fields, 11);  // handshake 2 + 5 buckets, connect 2, dns_latency 2
}

TEST(PrometheusMetrics, ServiceLatenciesAreHistogramsAndSummaries) {
  Fixture fx;
  const std::string t = fx.render(ExpositionFormat::kPrometheus);
  const std::string l = "vm=\"web1\",bridge=\"br0\",tap=\"vmmtap0\"";
  EXPECT_NE(t.find("# TYPE vmscope_vm_service_handshake_seconds histogram\n"), std::string::npos);
  for (const std::string& line :
       {"vmscope_vm_service_handshake_seconds_bucket{" + l + ",le=\"0.0001\"} 1",
        "vmscope_vm_service_handshake_seconds_bucket{" + l + ",le=\"0.001\"} 4",
        "vmscope_vm_service_handshake_seconds_bucket{" + l + ",le=\"1\"} 5",
        "vmscope_vm_service_handshake_seconds_bucket{" + l + ",le=\"+Inf\"} 5",
        "vmscope_vm_service_handshake_seconds_count{" + l + "} 5",
        "vmscope_vm_service_handshake_seconds_sum{" + l + "} 0.0025",
        "vmscope_vm_service_connect_seconds_count{" + l + "} 2",
        "vmscope_vm_service_connect_seconds_sum{" + l + "} 0.003"})
    EXPECT_NE(t.find("\n" + line + "\n"), std::string::npos) << line;
  EXPECT_NE(t.find("# TYPE vmscope_vm_service_connect_seconds summary\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE vmscope_vm_service_dns_latency_seconds summary\n"), std::string::npos);
}

TEST(PrometheusMetrics, TickDurationHistogram) {
  TickHistogram h;
  h.observe(0.0004);
  h.observe(0.003);
  h.observe(0.003);
  h.observe(7);
  Fixture fx;
  const std::string t = fx.render(ExpositionFormat::kPrometheus, h);
  for (const std::string line : {
           "vmscope_tick_duration_seconds_bucket{le=\"0.001\"} 1",
           "vmscope_tick_duration_seconds_bucket{le=\"0.0025\"} 1",
           "vmscope_tick_duration_seconds_bucket{le=\"0.005\"} 3",
           "vmscope_tick_duration_seconds_bucket{le=\"2.5\"} 3",
           "vmscope_tick_duration_seconds_bucket{le=\"+Inf\"} 4",
           "vmscope_tick_duration_seconds_count 4",
           "vmscope_tick_duration_seconds_sum 7.0064",
       })
    EXPECT_NE(t.find("\n" + line + "\n"), std::string::npos) << line;
}

TEST(PrometheusMetrics, AnExitedVmDisappears) {
  Fixture fx;
  EXPECT_NE(fx.render(ExpositionFormat::kPrometheus).find("vm=\"web1\""), std::string::npos);
  fx.sample.net->taps.erase(fx.sample.net->taps.begin());
  fx.sample.vms->erase(fx.sample.vms->begin());
  const std::string t = fx.render(ExpositionFormat::kPrometheus);
  EXPECT_EQ(t.find("web1"), std::string::npos);
  EXPECT_EQ(t.find("vmmtap0"), std::string::npos);
  EXPECT_NE(t.find("vmmtap1"), std::string::npos);
}

TEST(PrometheusMetrics, StartTimesStayPutUntilARestart) {
  Fixture fx;
  StartTimes starts;
  const auto start_of = [&](double uptime, int64_t ts_ns) {
    fx.sample.timestamp_ns = ts_ns;
    (*fx.sample.vms)[0].uptime_s = uptime;
    auto snap = retain_snapshot(fx.sample, fx.self, TaskCounterSupport{}, TickHistogram{});
    starts.settle(*snap);
    std::string out;
    render_metrics(*snap, ExpositionFormat::kPrometheus, out);
    const std::string key = "\nvmscope_vm_start_time_seconds{vm=\"web1\"} ";
    const size_t at = out.find(key);
    EXPECT_NE(at, std::string::npos);
    return std::stod(out.substr(at + key.size()));
  };
  const int64_t t0 = int64_t{1700000000} * 1000000000;
  EXPECT_DOUBLE_EQ(start_of(100.0, t0), 1699999900.0);
  // The next ticks: uptime and clock read a few ms apart.
  EXPECT_DOUBLE_EQ(start_of(100.998, t0 + 1000000000), 1699999900.0);
  EXPECT_DOUBLE_EQ(start_of(102.003, t0 + 2000000000), 1699999900.0);
  // A restart: a new start.
  EXPECT_DOUBLE_EQ(start_of(0.5, t0 + 3000000000), 1700000002.5);
  // A VM gone for a tick is forgotten: its next start is its own, even within a second.
  fx.sample.vms->erase(fx.sample.vms->begin());
  auto snap = retain_snapshot(fx.sample, fx.self, TaskCounterSupport{}, TickHistogram{});
  starts.settle(*snap);
  fx.sample.vms->insert(fx.sample.vms->begin(), (*fx.sample.vms)[0]);
  (*fx.sample.vms)[0].vm = fx.vm_a;
  EXPECT_DOUBLE_EQ(start_of(2.25, t0 + 5000000000), 1700000002.75);
}

TEST(PrometheusMetrics, KernelCountersLeftOutWhereTheKernelLacksThem) {
  Fixture fx;
  TickHistogram h;
  std::string out;
  render_metrics(*retain_snapshot(fx.sample, fx.self, TaskCounterSupport{false, false}, h),
                 ExpositionFormat::kPrometheus, out);
  EXPECT_EQ(out.find("vmscope_vm_cpu_run_delay_seconds"), std::string::npos);
  EXPECT_EQ(out.find("vmscope_vm_io_"), std::string::npos);
  EXPECT_NE(out.find("vmscope_vm_cpu_seconds_total"), std::string::npos);
}

TEST(PrometheusMetrics, SnapshotOwnsItsNames) {
  auto fx = std::make_unique<Fixture>();
  auto snap = retain_snapshot(fx->sample, fx->self, TaskCounterSupport{}, TickHistogram{});
  fx->vm_a.assign("XXXX");  // the engine's names change after the tick
  fx.reset();
  std::string out;
  render_metrics(*snap, ExpositionFormat::kPrometheus, out);
  EXPECT_NE(out.find("vm=\"web1\""), std::string::npos);
}

// ---- the HTTP server -----------------------------------------------------------------

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

UniqueFd connect_to(const std::string& address) {
  const size_t colon = address.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  timeval tv{5, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

Reply http(const std::string& address, const std::string& request) {
  UniqueFd fd = connect_to(address);
  Reply r;
  if (!fd.valid()) return r;
  EXPECT_EQ(::write(fd.get(), request.data(), request.size()), ssize_t(request.size()));
  std::string raw;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) raw.append(buf, size_t(n));
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  std::istringstream head(raw.substr(0, end));
  std::string line, proto;
  std::getline(head, line);
  std::istringstream(line) >> proto >> r.status;
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  r.body = raw.substr(end + 4);
  return r;
}

Reply get(const std::string& address, const std::string& path, const std::string& extra = "") {
  return http(address,
              "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n");
}

TEST(MetricsServer, ServesTheLastPublishedTickInEitherFormat) {
  auto server = MetricsServer::start("127.0.0.1:0");
  ASSERT_TRUE(server) << server.error().message;
  const std::string addr = (*server)->address();
  EXPECT_EQ(addr.rfind("127.0.0.1:", 0), 0u) << addr;

  // Before the first tick: the agent's own families, no VM.
  Reply r = get(addr, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("vmscope_build_info{"), std::string::npos);
  EXPECT_EQ(r.body.find("vm=\""), std::string::npos);

  Fixture fx;
  (*server)->publish(fx.sample, fx.self, TaskCounterSupport{});
  r = get(addr, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, fx.render(ExpositionFormat::kPrometheus, [] {
    TickHistogram h;
    h.observe(0.003);
    return h;
  }()));
  check_structure(r.body, ExpositionFormat::kPrometheus);

  r = get(addr, "/metrics",
          "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_TRUE(r.body.ends_with("# EOF\n"));
  check_structure(r.body, ExpositionFormat::kOpenMetrics);

  // gzip when accepted
  r = get(addr, "/metrics", "Accept-Encoding: gzip\r\n");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-encoding"], "gzip");
  EXPECT_EQ(r.body.substr(0, 2), "\x1f\x8b");

  // The next tick replaces it: the exited VM is gone.
  fx.sample.net->taps.erase(fx.sample.net->taps.begin());
  fx.sample.vms->erase(fx.sample.vms->begin());
  (*server)->publish(fx.sample, fx.self, TaskCounterSupport{});
  r = get(addr, "/metrics");
  EXPECT_EQ(r.body.find("web1"), std::string::npos);
  EXPECT_NE(r.body.find("vmscope_tick_duration_seconds_count 2\n"), std::string::npos);

  EXPECT_EQ(get(addr, "/nothing").status, 404);
  EXPECT_EQ(get(addr, "/").status, 200);
  Reply post = http(addr,
                    "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
}

TEST(MetricsServer, APortInUseIsOneLineError) {
  auto first = MetricsServer::start("127.0.0.1:0");
  ASSERT_TRUE(first) << first.error().message;
  const std::string addr = (*first)->address();
  auto second = MetricsServer::start(addr);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message,
            "metrics endpoint (--listen " + addr + "): bind: Address already in use");
  // The first still serves.
  EXPECT_EQ(get(addr, "/metrics").status, 200);
}

TEST(MetricsServer, ListenAddresses) {
  for (const char* ok : {"127.0.0.1:9847", "0.0.0.0:1", ":9847", "[::1]:9847", "[::]:0"})
    EXPECT_TRUE(parse_listen_address(ok)) << ok;
  const struct {
    std::string in, why;
  } bad[] = {{"9847", "no port"},
             {"localhost:9847", "not an IPv4 address"},
             {"127.0.0.1:", "the port must be a number"},
             {"127.0.0.1:http", "the port must be a number"},
             {"127.0.0.1:65536", "at most 65535"},
             {"::1:9847", "not an IPv4 address"},
             {"[::1]9847", "the port must be a number"}};
  for (const auto& b : bad) {
    auto r = parse_listen_address(b.in);
    ASSERT_FALSE(r) << b.in;
    EXPECT_NE(r.error().message.find(b.why), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("\"" + b.in + "\""), std::string::npos) << r.error().message;
  }
}

TEST(MetricsServer, AHungScraperDelaysNeitherPublishNorOtherScrapes) {
  auto server = MetricsServer::start("127.0.0.1:0");
  ASSERT_TRUE(server) << server.error().message;
  const std::string addr = (*server)->address();
  Fixture fx;
  // A big snapshot: many taps, so that a response does not fit the socket buffers.
  for (int i = 0; i < 1000; ++i) fx.sample.net->taps.push_back(fx.sample.net->taps[0]);
  (*server)->publish(fx.sample, fx.self, TaskCounterSupport{});
  // Scrapers that ask and never read, and one that never finishes its request.
  std::vector<UniqueFd> hung;
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 4; ++i) {
    hung.push_back(connect_to(addr));
    ASSERT_TRUE(hung.back().valid());
    ASSERT_EQ(::write(hung.back().get(), req.data(), req.size()), ssize_t(req.size()));
  }
  hung.push_back(connect_to(addr));
  ASSERT_EQ(::write(hung.back().get(), "GET /met", 8), 8);
  std::this_thread::sleep_for(200ms);

  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) (*server)->publish(fx.sample, fx.self, TaskCounterSupport{});
  const double publish_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 20;
  EXPECT_LT(publish_ms, 50.0);  // a copy of 1000 taps; no wait for any scraper
  const auto t1 = std::chrono::steady_clock::now();
  const Reply r = get(addr, "/metrics");
  const double scrape_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("vmscope_tick_duration_seconds_count 21\n"), std::string::npos);
  EXPECT_LT(scrape_ms, 2000.0);
  std::printf(
      "[ figures ] publish of 1002 taps %.2f ms, a scrape beside 5 hung ones %.1f ms, %zu bytes\n",
      publish_ms, scrape_ms, r.body.size());
}

}  // namespace
}  // namespace vmscope
