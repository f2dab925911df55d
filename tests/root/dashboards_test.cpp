// Root test for the shipped Grafana dashboards (dashboards/*.json).
//
// Structure: both files parse, every panel has a unique id, a gridPos inside the 24-column
// grid without overlaps, the InfluxDB datasource input, raw InfluxQL targets and a unit;
// the `vm` and `bridge` variables and the vm_event annotation are present.
//
// Queries: a real qemu guest behind a tap on a bridge in a network namespace, the agent
// writing to a real InfluxDB 1.x in that namespace while the host downloads the guest's
// blob, plus a few points in the unikernel's own format (mirage-monitoring's gc, memory,
// logs, http_response, as the mollymawk dashboard reads them). Every target query of
// both dashboards (and every variable and annotation query) is then run with the
// variables substituted as Grafana does; each must answer a non-empty series (the Health
// rows' vm_service queries too: they need the agent's vm_service lines). The
// throughput panel's bits are checked against the counters and the tap's own delta, the
// Health row's HTTP 2xx and accepted-connection rates against the downloads.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bridge_env.h"
#include "json.h"
#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test::dashboards_json {
namespace {

Json parse_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  return parse_json(text);
}

// ---- the dashboards ------------------------------------------------------------------

const char* const kFiles[] = {"vm-overview.json", "host.json"};
const std::string kHostFilter = "\"host\" =~ /^$host$/";

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}
const std::string kDsUid = "${DS_INFLUXDB}";

std::string dashboard_path(const std::string& file) {
  return source_dir() + "/dashboards/" + file;
}

// All panels, rows' nested panels included.
void collect_panels(const Json& list, std::vector<const Json*>& out) {
  for (const Json& p : list.items) {
    out.push_back(&p);
    if (const Json* nested = p.get("panels")) collect_panels(*nested, out);
  }
}

struct Query {
  std::string where;  // "file: panel 'title' refId A", for messages
  std::string panel_type;
  std::string text;
  bool must_have_data = true;
};

// Every InfluxQL text a dashboard makes Grafana run: targets, variables, annotations.
std::vector<Query> all_queries(const std::string& file, const Json& d) {
  std::vector<Query> out;
  std::vector<const Json*> panels;
  collect_panels(*d.get("panels"), panels);
  for (const Json* p : panels) {
    const Json* targets = p->get("targets");
    if (!targets) continue;
    for (const Json& t : targets->items)
      out.push_back({file + ": panel '" + p->str("title") + "' refId " + t.str("refId"),
                     p->str("type"), t.str("query")});
  }
  for (const Json& v : d.get("templating")->get("list")->items)
    out.push_back({file + ": variable " + v.str("name"), "variable", v.str("query")});
  for (const Json& a : d.get("annotations")->get("list")->items) {
    const Json* ds = a.get("datasource");
    if (ds && ds->str("type") == "influxdb")
      out.push_back({file + ": annotation '" + a.str("name") + "'", "annotation", a.str("query")});
  }
  return out;
}

bool ds_ok(const Json* ds) {
  return ds && ds->kind == Json::kObject && ds->str("type") == "influxdb" &&
         ds->str("uid") == kDsUid;
}

bool is_number(const Json* v) {
  return v && v->kind == Json::kNumber;
}

TEST(Dashboards, StructureIsImportableAndComplete) {
  for (const char* file : kFiles) {
    SCOPED_TRACE(file);
    Json d;
    ASSERT_NO_THROW(d = parse_file(dashboard_path(file)));
    ASSERT_EQ(d.kind, Json::kObject);
    EXPECT_FALSE(d.str("title").empty());
    EXPECT_FALSE(d.str("uid").empty());
    ASSERT_TRUE(is_number(d.get("schemaVersion")));

    // The datasource is an import input.
    const Json* inputs = d.get("__inputs");
    ASSERT_TRUE(inputs && inputs->kind == Json::kArray);
    bool has_input = false;
    for (const Json& in : inputs->items)
      has_input |= in.str("name") == "DS_INFLUXDB" && in.str("type") == "datasource" &&
                   in.str("pluginId") == "influxdb";
    EXPECT_TRUE(has_input) << "no __inputs entry DS_INFLUXDB (datasource, influxdb)";

    // Variables.
    const Json* tmpl = d.get("templating");
    ASSERT_TRUE(tmpl && tmpl->get("list"));
    std::map<std::string, const Json*> vars;
    for (const Json& v : tmpl->get("list")->items) vars[v.str("name")] = &v;
    ASSERT_TRUE(vars.count("vm")) << "variable vm missing";
    ASSERT_TRUE(vars.count("bridge")) << "variable bridge missing";
    ASSERT_TRUE(vars.count("host")) << "variable host missing";
    EXPECT_EQ(vars["vm"]->str("query"), "SHOW TAG VALUES WITH KEY = \"vm\" WHERE " + kHostFilter);
    EXPECT_EQ(vars["bridge"]->str("query"),
              "SHOW TAG VALUES FROM \"interface\" WITH KEY = \"bridge\" WHERE " + kHostFilter);
    // host: all hosts by default, as a regex that also matches lines without a host tag
    // (one host through Telegraf without one, the guests' own mollymawk series).
    EXPECT_EQ(vars["host"]->str("query"), "SHOW TAG VALUES WITH KEY = \"host\"");
    EXPECT_EQ(vars["host"]->str("allValue"), ".*");
    const Json* current = vars["host"]->get("current");
    ASSERT_TRUE(current && current->get("value"));
    ASSERT_EQ(current->get("value")->items.size(), 1u);
    EXPECT_EQ(current->get("value")->items[0].text, "$__all");
    for (const auto& [name, v] : vars) {
      EXPECT_EQ(v->str("type"), "query") << name;
      EXPECT_TRUE(ds_ok(v->get("datasource"))) << name;
      EXPECT_TRUE(v->is_true("multi")) << name;
      EXPECT_TRUE(v->is_true("includeAll")) << name;
    }

    // vm_event as an annotation.
    bool annotated = false;
    for (const Json& a : d.get("annotations")->get("list")->items)
      if (ds_ok(a.get("datasource")) &&
          a.str("query").find("FROM \"vm_event\"") != std::string::npos &&
          a.str("textColumn") == "text" && a.str("query").find("$timeFilter") != std::string::npos)
        annotated = true;
    EXPECT_TRUE(annotated) << "no InfluxQL annotation on vm_event with textColumn text";
    for (const Json& a : d.get("annotations")->get("list")->items) {
      if (ds_ok(a.get("datasource"))) {
        EXPECT_NE(a.str("query").find(kHostFilter), std::string::npos) << a.str("name");
      }
    }

    // Panels.
    std::vector<const Json*> panels;
    ASSERT_TRUE(d.get("panels"));
    collect_panels(*d.get("panels"), panels);
    ASSERT_GE(panels.size(), 4u);
    std::set<std::string> ids;
    struct Box {
      int x, y, w, h;
      std::string title;
    };
    std::vector<Box> boxes;
    size_t targets_total = 0;
    for (const Json* p : panels) {
      const std::string title = p->str("title");
      SCOPED_TRACE("panel '" + title + "'");
      ASSERT_TRUE(is_number(p->get("id")));
      EXPECT_TRUE(ids.insert(p->get("id")->text).second) << "duplicate id " << p->get("id")->text;
      EXPECT_FALSE(title.empty());
      const Json* g = p->get("gridPos");
      ASSERT_TRUE(g && is_number(g->get("x")) && is_number(g->get("y")) && is_number(g->get("w")) &&
                  is_number(g->get("h")));
      Box b{std::stoi(g->get("x")->text), std::stoi(g->get("y")->text),
            std::stoi(g->get("w")->text), std::stoi(g->get("h")->text), title};
      EXPECT_TRUE(b.x >= 0 && b.w > 0 && b.h > 0 && b.x + b.w <= 24) << "gridPos out of grid";
      for (const Box& o : boxes)
        EXPECT_FALSE(b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h)
            << "overlaps panel '" << o.title << "'";
      boxes.push_back(b);
      EXPECT_TRUE(ds_ok(p->get("datasource"))) << "datasource must be influxdb ${DS_INFLUXDB}";
      if (p->str("type") == "row") {
        // A row is a layout header: Grafana gives it no queries and no field config.
        EXPECT_FALSE(p->get("targets") && !p->get("targets")->items.empty());
        continue;
      }
      const Json* fc = p->get("fieldConfig");
      const Json* defaults = fc ? fc->get("defaults") : nullptr;
      EXPECT_TRUE(defaults && !defaults->str("unit").empty()) << "fieldConfig.defaults.unit unset";
      const Json* targets = p->get("targets");
      ASSERT_TRUE(targets && !targets->items.empty()) << "no targets";
      std::set<std::string> refs;
      for (const Json& t : targets->items) {
        ++targets_total;
        const std::string q = t.str("query");
        SCOPED_TRACE("refId " + t.str("refId") + ": " + q);
        EXPECT_TRUE(refs.insert(t.str("refId")).second) << "duplicate refId";
        EXPECT_TRUE(ds_ok(t.get("datasource")));
        EXPECT_TRUE(t.is_true("rawQuery"));
        EXPECT_EQ(q.rfind("SELECT ", 0), 0u);
        EXPECT_NE(q.find("$timeFilter"), std::string::npos);
        if (q.find("GROUP BY time(") != std::string::npos) {
          EXPECT_NE(q.find("GROUP BY time($__interval)"), std::string::npos);
        }
        if (q.find("\"vm\" =~") != std::string::npos) {
          EXPECT_NE(q.find("\"vm\" =~ /^$vm$/"), std::string::npos);
        }
        if (q.find("\"bridge\" =~") != std::string::npos) {
          EXPECT_NE(q.find("\"bridge\" =~ /^$bridge$/"), std::string::npos);
        }
        // Every read of a measurement filters on host, and every series of VMs or bridges
        // is one host's (two hosts may run VMs of the same name).
        EXPECT_EQ(count_of(q, "FROM \""), count_of(q, kHostFilter));
        static const std::regex group_by(
            R"(GROUP BY ((time\([^)]*\)|"[^"]+")(, (time\([^)]*\)|"[^"]+"))*))");
        for (std::sregex_iterator m(q.begin(), q.end(), group_by), e; m != e; ++m) {
          const std::string tags = (*m)[1];
          if (tags.find("\"vm\"") != std::string::npos ||
              tags.find("\"bridge\"") != std::string::npos) {
            EXPECT_NE(tags.find("\"host\""), std::string::npos) << "GROUP BY " << tags;
          }
        }
      }
    }
    std::printf("[ figures ] %s: %zu panels, %zu targets\n", file, panels.size(), targets_total);
  }

  // What each dashboard must show (albatross / mollymawk compatibility; agent fields).
  auto queries_of = [](const char* file) {
    std::string all;
    for (const Query& q : all_queries(file, parse_file(dashboard_path(file)))) all += q.text + "\n";
    return all;
  };
  const std::string vmo = queries_of("vm-overview.json");
  for (const char* must :
       {"non_negative_derivative(last(\"host_to_vm_bytes\"), 1s) * 8",
        "non_negative_derivative(last(\"vm_to_host_bytes\"), 1s) * 8", "mean(\"rss\") * 4096",
        "mean(\"live words\") * 8 AS \"gc_live\" FROM \"gc\"",
        "mean(\"memory live words\") * 8 AS \"malloc_live\" FROM \"memory\"", "\"errors\"",
        "\"warnings\"", "FROM \"logs\"", "last(\"2xx\")", "last(\"3xx\")", "last(\"4xx\")",
        "last(\"5xx\")", "FROM \"http_response\""})
    EXPECT_NE(vmo.find(must), std::string::npos) << "vm-overview.json lacks " << must;
  // Both have a Health row: CPU wait, disk, and how the VM's services answer.
  const std::vector<std::string> health = {
      "non_negative_derivative(last(\"run_delay\"), 1s) AS \"wait\" FROM \"vm_cpu\"",
      "non_negative_derivative(last(\"read_bytes\"), 1s) AS \"read\" FROM \"vm_io\"",
      "\"write_bytes\" - \"cancelled_write_bytes\" AS \"written\" FROM \"vm_io\"",
      "last(\"tcp_accepted\")",
      "last(\"tcp_refused\")",
      "last(\"tcp_unanswered\")",
      "non_negative_derivative(last(\"handshake_sum_us\"), 1s) AS \"s\"",
      "non_negative_derivative(last(\"handshake_count\"), 1s) AS \"c\"",
      "sum(\"s\") / sum(\"c\")",
      "last(\"dns_noerror\")",
      "last(\"dns_nxdomain\")",
      "last(\"dns_servfail\")",
      "last(\"dns_refused\")",
      "last(\"dns_other\")",
      "last(\"http_1xx\")",
      "last(\"http_2xx\")",
      "last(\"http_3xx\")",
      "last(\"http_4xx\")",
      "last(\"http_5xx\")",
      "FROM \"vm_service\""};
  for (const char* file : kFiles) {
    const std::string all = queries_of(file);
    for (const std::string& must : health)
      EXPECT_NE(all.find(must), std::string::npos) << file << " lacks " << must;
    const Json d = parse_file(dashboard_path(file));
    std::vector<const Json*> panels;
    collect_panels(*d.get("panels"), panels);
    EXPECT_TRUE(std::any_of(panels.begin(), panels.end(),
                            [](const Json* p) {
                              return p->str("type") == "row" &&
                                     p->str("title").rfind("Health", 0) == 0;
                            }))
        << file << " has no Health row";
  }
  const std::string host = queries_of("host.json");
  // The VMs that wait most for a CPU, the slowest to answer, the busiest disks.
  for (const char* must :
       {"top(\"wait\", \"vm\", 10)", "top(\"handshake\", \"vm\", 10)", "top(\"disk\", \"vm\", 10)"})
    EXPECT_NE(host.find(must), std::string::npos) << "host.json lacks " << must;
  for (const char* must : {"top(",
                           "\"utime\" + \"stime\"",
                           "FROM \"resource_usage\"",
                           "last(\"minflt\")",
                           "last(\"maxflt\")",
                           "mean(\"rss\") * 4096",
                           "_tcp_bytes",
                           "_udp_bytes",
                           "_icmp_bytes",
                           "_other_bytes",
                           "_new_connections",
                           "_dropped",
                           "_packets",
                           "FROM \"bridge\"",
                           "\"tick_ns\"",
                           "\"lines_written\"",
                           "\"lines_dropped\"",
                           "\"rss_bytes\"",
                           "\"proc_events_lost\"",
                           "FROM \"vm_event\""})
    EXPECT_NE(host.find(must), std::string::npos) << "host.json lacks " << must;
}

// ---- InfluxDB in the namespace -------------------------------------------------------

struct Series {
  std::map<std::string, std::string> tags;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> values;  // text of each cell ("null" for null)
};

struct Answer {
  std::vector<Series> series;
  size_t non_null = 0;  // cells other than time that hold a value
};

Answer parse_answer(const std::string& body) {
  const Json doc = parse_json(body);
  if (const Json* err = doc.get("error")) throw std::runtime_error("InfluxDB: " + err->text);
  const Json* results = doc.get("results");
  if (!results || results->items.empty()) throw std::runtime_error("InfluxDB: no results: " + body);
  const Json& st = results->items[0];
  if (const Json* err = st.get("error")) throw std::runtime_error("InfluxDB: " + err->text);
  Answer a;
  if (const Json* series = st.get("series")) {
    for (const Json& s : series->items) {
      Series out;
      if (const Json* tags = s.get("tags"))
        for (const auto& [k, v] : tags->members) out.tags[k] = v.text;
      if (const Json* cols = s.get("columns"))
        for (const Json& c : cols->items) out.columns.push_back(c.text);
      if (const Json* values = s.get("values")) {
        for (const Json& row : values->items) {
          std::vector<std::string> r;
          for (size_t c = 0; c < row.items.size(); ++c) {
            r.push_back(row.items[c].text);
            if (row.items[c].kind != Json::kNull &&
                (c >= out.columns.size() || out.columns[c] != "time"))
              ++a.non_null;
          }
          out.values.push_back(std::move(r));
        }
      }
      a.series.push_back(std::move(out));
    }
  }
  return a;
}

// influxd in the namespace, answers parsed into series.
class Influx : public InfluxServer {
 public:
  using InfluxServer::InfluxServer;
  void create_database(const std::string& db) const {
    parse_answer(post_query("CREATE DATABASE \"" + db + "\""));
  }
  Answer query(const std::string& db, const std::string& q) const {
    return parse_answer(get_query(db, q, 10));
  }
};

constexpr int kInfluxPort = 18091;
const std::string kBridge = "vsdbr0";
const std::string kTap = "vmmtap0";
const std::string kVm = "web1";
const std::string kVmAddr = "10.99.3.2";
constexpr uint64_t kBlobBytes = 1048576;
constexpr int kDownloads = 3;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size())
    s.replace(at, from.size(), to);
  return s;
}

// As Grafana does for a single selected value (inside /^...$/ anchors) and a 1 s interval.
std::string substitute(const std::string& q, const std::string& vm = kVm,
                       const std::string& bridge = kBridge) {
  std::string s = replace_all(q, "$timeFilter", "time > now() - 5m");
  s = replace_all(s, "$__interval", "1s");
  s = replace_all(s, "$interval", "1s");
  s = replace_all(s, "$bridge", bridge);
  s = replace_all(s, "$vm", vm);
  s = replace_all(s, "$host", ".*");  // All, the default (allValue)
  return s;
}

uint64_t tap_counter(const Netns& ns, const std::string& name) {
  return ns.stat(kTap, name);
}

// Sum of a derivative answer (bits/s per 1 s bucket) -> bits; and the counter's delta over
// the same buckets: last of the final bucket minus last of the first.
struct Throughput {
  double bits = 0;
  int64_t counter_delta = 0, counter_last = 0;
  size_t buckets = 0, gaps = 0;
};

Throughput throughput(const Influx& influx, const std::string& panel_query,
                      const std::string& field) {
  Throughput t;
  const Answer rate = influx.query("vmscope", substitute(panel_query));
  if (rate.series.size() != 1) throw std::runtime_error("expected one series: " + panel_query);
  std::string trace;
  for (const auto& row : rate.series[0].values) {
    trace += " " + (row.size() > 1 ? row[1] : std::string("?"));
    if (row.size() > 1 && row[1] != "null") {
      t.bits += std::stod(row[1]);
      ++t.buckets;
    }
  }
  std::printf("[ figures ] %s bit/s per 1 s bucket:%s\n", field.c_str(), trace.c_str());
  const Answer last =
      influx.query("vmscope", "SELECT last(\"" + field + "\") FROM \"interface\" WHERE \"vm\" = '" +
                                  kVm + "' AND time > now() - 5m GROUP BY time(1s) fill(none)");
  if (last.series.size() != 1 || last.series[0].values.empty())
    throw std::runtime_error("no " + field + " counters");
  const auto& v = last.series[0].values;
  trace.clear();
  for (const auto& row : v) trace += " " + row[1];
  std::printf("[ figures ] %s last() per 1 s bucket:%s\n", field.c_str(), trace.c_str());
  t.counter_last = std::stoll(v.back()[1]);
  t.counter_delta = t.counter_last - std::stoll(v.front()[1]);
  // Buckets without a point (a derivative then spans the gap, at a lower rate).
  t.gaps = v.size() > 0 && v.size() - 1 > t.buckets ? v.size() - 1 - t.buckets : 0;
  return t;
}

// The sum over every 1 s bucket of a rate panel's answer (per second): the count it shows.
double bucket_sum(const Influx& influx, const std::string& panel_query) {
  const Answer a = influx.query("vmscope", substitute(panel_query));
  double sum = 0;
  for (const Series& s : a.series)
    for (const auto& row : s.values)
      if (row.size() > 1 && row[1] != "null") sum += std::stod(row[1]);
  return sum;
}

TEST(Dashboards, EveryQueryAnswersFromARealVmAndAgent) {
  const auto t_start = std::chrono::steady_clock::now();
  vm_image();

  TempDir tmp("vmscope-dashboards");
  Netns ns;
  add_bridge_with_tap(ns, kBridge, "10.99.3.1/24", kTap);

  auto vm = std::make_unique<Vm>(ns, tmp.path, kTap, kVm, kVmAddr + "/24");
  Influx influx(ns, tmp.path + "/influx", kInfluxPort);
  influx.create_database("vmscope");

  const uint64_t rx0 = tap_counter(ns, "rx_bytes"), tx0 = tap_counter(ns, "tx_bytes");
  auto agent = std::make_unique<Child>(
      vmscope_bin(),
      std::vector<std::string>{"run", "--interval", "0.5", "--output",
                               influx.base() + "/write?db=vmscope", "--output", "-", "--spool-dir",
                               tmp.path + "/spool"},
      SpawnOptions{ns.name(), "", {}, false});
  // Attached: the first interface line of the guest.
  ASSERT_TRUE(agent->wait_line(
      [](const std::string& l) {
        return l.rfind("interface,", 0) == 0 && l.find("vm=" + kVm) != std::string::npos;
      },
      10s))
      << agent->stderr_text();
  const auto attached = std::chrono::steady_clock::now();
  usleep(1200000);  // a couple of ticks before the traffic: the derivative needs a base

  for (int i = 0; i < kDownloads; ++i) {
    const std::string got = ns.capture(
        "curl -sS -f -m 10 -o /dev/null -w '%{size_download}' http://" + kVmAddr + "/blob");
    ASSERT_EQ(got, std::to_string(kBlobBytes)) << "download " << i + 1 << "\nguest console:\n"
                                               << vm->console_tail();
    usleep(300000);
  }

  // The unikernel's own series (mirage-monitoring, as the mollymawk dashboard reads them).
  const long now_s = static_cast<long>(now_ns() / 1000000000);
  std::string inside;
  for (int k = 0; k < 3; ++k) {
    const std::string ts = " " + std::to_string(now_s - 3 + k) + "\n";
    const std::string n = std::to_string(k);
    inside += "gc,vm=" + kVm + " live\\ words=" + std::to_string(1000 + 100 * k) + "i" + ts;
    inside +=
        "memory,vm=" + kVm + " memory\\ live\\ words=" + std::to_string(5000 + 10 * k) + "i" + ts;
    inside += "logs,vm=" + kVm + " errors=0i,warnings=" + std::to_string(1 + k) + "i" + ts;
    inside += "http_response,vm=" + kVm + " 2xx=" + std::to_string(10 + 5 * k) + "i,3xx=" + n +
              "i,4xx=" + std::to_string(2 * k) + "i,5xx=" + n + "i" + ts;
  }
  {
    std::ofstream f(tmp.path + "/inside.lp");
    f << inside;
  }
  ASSERT_EQ(influx.write_file("vmscope", tmp.path + "/inside.lp"), "204") << influx.log_tail();

  // ~6 s of agent ticks in all, the last ones quiet.
  std::this_thread::sleep_until(attached + 6s);
  const uint64_t rx1 = tap_counter(ns, "rx_bytes"), tx1 = tap_counter(ns, "tx_bytes");
  // The guest exits while the agent runs: a vm_event for the annotation.
  vm.reset();
  ASSERT_TRUE(agent->wait_line(
      [](const std::string& l) {
        return l.rfind("vm_event,", 0) == 0 && l.find("vm=" + kVm) != std::string::npos;
      },
      5s))
      << "no vm_event for the guest's exit\n"
      << agent->stderr_text();
  usleep(1000000);  // the HTTP sink delivers it
  agent->signal(SIGTERM);
  const int st = agent->wait(10s);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << agent->stderr_text();

  // Every query of both dashboards.
  size_t ran = 0;
  std::string throughput_in, throughput_out, http_2xx, accepted;
  for (const char* file : kFiles) {
    const Json d = parse_file(dashboard_path(file));
    for (const Query& q : all_queries(file, d)) {
      const std::string text = substitute(q.text);
      SCOPED_TRACE(q.where + "\n  " + text);
      EXPECT_EQ(replace_all(text, "$/", "/").find('$'), std::string::npos)
          << "unsubstituted variable";
      Answer a;
      try {
        a = influx.query("vmscope", text);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        continue;
      }
      ++ran;
      EXPECT_FALSE(a.series.empty()) << "empty answer";
      EXPECT_GT(a.non_null, 0u) << "no values";
      std::printf("[ figures ] %-60s %zu series, %zu values\n", q.where.c_str(), a.series.size(),
                  a.non_null);
      if (std::string(file) == "vm-overview.json" && q.panel_type == "timeseries" &&
          q.text.find("last(\"host_to_vm_bytes\"), 1s) * 8") != std::string::npos)
        throughput_in = q.text;
      if (std::string(file) == "vm-overview.json" && q.panel_type == "timeseries" &&
          q.text.find("last(\"vm_to_host_bytes\"), 1s) * 8") != std::string::npos)
        throughput_out = q.text;
      if (std::string(file) == "vm-overview.json" &&
          q.text.find("FROM \"vm_service\"") != std::string::npos &&
          q.text.find("last(\"http_2xx\")") != std::string::npos)
        http_2xx = q.text;
      if (std::string(file) == "vm-overview.json" &&
          q.text.find("FROM \"vm_service\"") != std::string::npos &&
          q.text.find("last(\"tcp_accepted\")") != std::string::npos)
        accepted = q.text;
    }
  }
  EXPECT_GE(ran, 93u);

  // Throughput: the bits of the panel add up to 8 x the counters' delta over its buckets,
  // which lies within the tap's own delta; the blobs are in it.
  ASSERT_FALSE(throughput_in.empty());
  ASSERT_FALSE(throughput_out.empty());
  const Throughput out = throughput(influx, throughput_out, "vm_to_host_bytes");
  const Throughput in = throughput(influx, throughput_in, "host_to_vm_bytes");
  const int64_t tap_rx = int64_t(rx1 - rx0), tap_tx = int64_t(tx1 - tx0);
  std::printf(
      "[ figures ] throughput panel: vm->host %.0f bit (%zu buckets, counter delta %lld B x 8 = "
      "%lld bit, tap rx delta %lld B); host->vm %.0f bit (%zu buckets, counter delta %lld B x 8 "
      "= %lld bit, tap tx delta %lld B)\n",
      out.bits, out.buckets, (long long)out.counter_delta, (long long)out.counter_delta * 8,
      (long long)tap_rx, in.bits, in.buckets, (long long)in.counter_delta,
      (long long)in.counter_delta * 8, (long long)tap_tx);
  for (const auto* t : {&out, &in}) {
    // Exact when every 1 s bucket holds a point; a bucket without one makes the
    // derivative span 2 s at half the rate: tolerated only as such (reported in gaps).
    EXPECT_NEAR(t->bits, 8.0 * double(t->counter_delta), 8.0 * double(t->counter_delta) * 0.01 + 1)
        << "gaps " << t->gaps;
    EXPECT_GT(t->bits, 0);
  }
  EXPECT_GE(out.counter_delta, int64_t(kDownloads * kBlobBytes));
  EXPECT_GE(out.buckets, 4u) << "too few 1 s buckets with a rate";
  // The agent counts from when it attached, after the tap's baseline was read; the guest
  // may still have sent a frame or two after the tap's end reading (before it stopped).
  EXPECT_LE(out.counter_last, tap_rx + 4 * 1518);
  EXPECT_LE(in.counter_last, tap_tx + 4 * 1518);
  EXPECT_LE(out.bits, 8.0 * double(tap_rx) + 8 * 1500 * 4);
  EXPECT_LE(in.bits, 8.0 * double(tap_tx) + 8 * 1500 * 4);
  // Health: each download is one accepted connection and one 200 answer; the rates per 1 s
  // bucket add up to them (exact when every bucket holds a point, as for the throughput).
  ASSERT_FALSE(http_2xx.empty());
  ASSERT_FALSE(accepted.empty());
  const std::vector<std::pair<std::string, std::string>> counted_panels = {
      {"HTTP 2xx", http_2xx}, {"TCP accepted", accepted}};
  for (const auto& [name, query] : counted_panels) {
    const double counted = bucket_sum(influx, query);
    std::printf("[ figures ] health panel %s: %.2f in all, %d downloads\n", name.c_str(), counted,
                kDownloads);
    EXPECT_NEAR(counted, kDownloads, 0.05) << name << ": " << substitute(query);
  }
  std::printf("[ dashboards ] test body %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
}

// ---- two hosts -----------------------------------------------------------------------

// The value of one cell as an integer (InfluxDB answers counters as JSON numbers).
int64_t cell(const Series& s, size_t row, size_t col) {
  return static_cast<int64_t>(std::llround(std::stod(s.values.at(row).at(col))));
}

// A throughput panel's query, turned into the counter it differentiates with the panel's
// own filters and tags: SELECT last("x") ... GROUP BY <the panel's tags>.
std::string counter_query(const std::string& panel, const std::string& field) {
  const size_t from = panel.find(" FROM \"interface\"");
  const size_t group = panel.find(" GROUP BY time($__interval), ");
  if (from == std::string::npos || group == std::string::npos) return "";
  std::string tags = panel.substr(group + std::strlen(" GROUP BY time($__interval), "));
  tags = tags.substr(0, tags.find(" fill"));
  return "SELECT last(\"" + field + "\") AS \"v\"" + panel.substr(from, group - from) +
         " GROUP BY " + tags;
}

// As Grafana substitutes for the two hosts' VM: `web`, on the albatross network `service`
// (the interface line's bridge tag, as the bridge variable lists it).
std::string substitute2(const std::string& q) {
  return substitute(q, "web", "service");
}

// Two agents, each in a network namespace of its own ("host") with a VM of the same name
// behind a tap on a bridge of the same name, write over http to one InfluxDB 1.x with
// different --hostname. Every throughput query of both dashboards, with `host` set to each,
// answers that host's own counters: the last value equals its tap's kernel counter
// exactly, and the bits of the panel add up to its counter's delta; with All, one series
// per host.
TEST(Dashboards, TwoHostsWithTheSameVmNameStayApart) {
  TempDir tmp("vmscope-two-hosts");
  struct Host {
    Host(std::string n, int f) : name(std::move(n)), frames(f) {}
    std::string name;
    int frames;  // ARP requests the "VM" sends: each host's bytes differ
    std::unique_ptr<Bridge> br = std::make_unique<Bridge>();
    std::unique_ptr<Child> holder, agent;
    uint64_t rx = 0, tx = 0;  // the tap's kernel counters at the end
  };
  Host hosts[2] = {{"host-a", 30}, {"host-b", 75}};
  for (Host& h : hosts) {
    h.br->add_tap("vmmtap0");
    h.holder = h.br->hold("solo5-hvt", kSolo5Args);  // VM "web" on both
  }
  // One InfluxDB in host-a's namespace, reached from host-b's over a veth pair.
  const Netns& na = hosts[0].br->ns;
  const Netns& nb = hosts[1].br->ns;
  must("ip link add vsha0 netns " + na.name() + " type veth peer name vshb0 netns " + nb.name());
  na.must("ip addr add 10.98.0.1/24 dev vsha0");
  na.must("ip link set vsha0 up");
  nb.must("ip addr add 10.98.0.2/24 dev vshb0");
  nb.must("ip link set vshb0 up");
  constexpr int kPort = 18093;
  Influx influx(na, tmp.path + "/influx", kPort, "0.0.0.0");
  influx.create_database("vmscope");
  const std::string urls[2] = {influx.base() + "/write?db=vmscope",
                               "http://10.98.0.1:" + std::to_string(kPort) + "/write?db=vmscope"};
  for (int i = 0; i < 2; ++i) {
    Host& h = hosts[i];
    h.agent = h.br->agent({"--output", urls[i], "--output", "-", "--hostname", h.name,
                           "--spool-dir", tmp.path + "/spool-" + h.name});
    ASSERT_TRUE(wait_point(*h.agent, "interface", "vm", "web", 0)) << h.agent->stderr_text();
  }
  // A second and more of quiet ticks first: the derivative's first 1 s bucket is the base.
  usleep(1300000);
  // The traffic over a few ticks, so that the panels' derivatives see it.
  for (int round = 0; round < 3; ++round) {
    for (Host& h : hosts)
      for (int k = 0; k < h.frames / 3; ++k)
        inject(*h.holder, arp_frame(kVmMac, ip("10.99.0.2"), ip("10.99.0.1")));
    usleep(400000);
  }
  for (Host& h : hosts)
    ASSERT_TRUE(wait_stat(h.br->ns, "vmmtap0", "rx_packets", uint64_t(h.frames / 3 * 3)));
  usleep(1500000);  // ticks after the last frame (and its ARP reply) carry the final counters
  for (Host& h : hosts) {
    h.agent->signal(SIGTERM);
    const int st = h.agent->wait(10s);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << h.agent->stderr_text();
    h.rx = h.br->ns.stat("vmmtap0", "rx_bytes");
    h.tx = h.br->ns.stat("vmmtap0", "tx_bytes");
    // stdout gets no host tag (Telegraf adds its own); http does (checked below).
    for (const std::string& l : h.agent->lines())
      EXPECT_EQ(l.find("host="), std::string::npos) << l;
  }
  EXPECT_NE(hosts[0].rx, hosts[1].rx);

  size_t checked = 0;
  for (const char* file : kFiles) {
    const Json d = parse_file(dashboard_path(file));
    for (const Query& q : all_queries(file, d)) {
      if (q.text.find("FROM (") != std::string::npos) continue;  // top(): both directions
      for (const char* field : {"vm_to_host_bytes", "host_to_vm_bytes"}) {
        if (q.text.find("non_negative_derivative(last(\"" + std::string(field) + "\"), 1s) * 8") ==
                std::string::npos ||
            q.text.find("FROM \"interface\"") == std::string::npos)
          continue;
        const std::string last_q = counter_query(q.text, field);
        ASSERT_FALSE(last_q.empty()) << q.text;
        for (const Host& h : hosts) {
          const std::string with_host = replace_all(q.text, "$host", h.name);
          SCOPED_TRACE(q.where + " host=" + h.name + "\n  " + substitute2(with_host));
          const uint64_t want = std::string(field) == "vm_to_host_bytes" ? h.rx : h.tx;
          // The counter under the panel's filters: this host's tap, exactly.
          const Answer last =
              influx.query("vmscope", substitute2(replace_all(last_q, "$host", h.name)));
          ASSERT_EQ(last.series.size(), 1u) << substitute2(replace_all(last_q, "$host", h.name));
          EXPECT_EQ(last.series[0].tags.at("host"), h.name);
          EXPECT_EQ(cell(last.series[0], 0, 1), int64_t(want)) << "kernel " << want;
          // The panel itself: its bits add up to 8 x this host's counter delta.
          const Answer panel = influx.query("vmscope", substitute2(with_host));
          ASSERT_EQ(panel.series.size(), 1u);
          double bits = 0;
          for (const auto& row : panel.series[0].values)
            if (row.size() > 1 && row[1] != "null") bits += std::stod(row[1]);
          const Answer first = influx.query(
              "vmscope",
              substitute2(replace_all(replace_all(last_q, "last(", "first("), "$host", h.name)));
          ASSERT_EQ(first.series.size(), 1u);
          const double delta = double(want) - double(cell(first.series[0], 0, 1));
          EXPECT_GT(delta, 0);
          EXPECT_NEAR(bits, 8 * delta, 8 * delta * 0.01 + 1);
          std::printf(
              "[ figures ] %s %s host=%s: last %lld (kernel %llu), panel %.0f bit, delta x8 %.0f\n",
              file, field, h.name.c_str(), (long long)cell(last.series[0], 0, 1),
              (unsigned long long)want, bits, 8 * delta);
          ++checked;
        }
        // All (the default): one series per host, each its own.
        const Answer all = influx.query("vmscope", substitute2(last_q));
        ASSERT_EQ(all.series.size(), 2u) << substitute2(last_q);
        for (const Series& s : all.series) {
          const Host& h = s.tags.at("host") == hosts[0].name ? hosts[0] : hosts[1];
          EXPECT_EQ(cell(s, 0, 1), int64_t(std::string(field) == "vm_to_host_bytes" ? h.rx : h.tx));
        }
      }
    }
  }
  EXPECT_GE(checked, 8u);  // both directions of 2+ panels per dashboard, for both hosts
  // The vm variable, with host set, lists that host's VM (and the processes that look
  // like VMs on this machine, which both agents see: processes are not per namespace).
  for (const Host& h : hosts) {
    const Answer vms = influx.query(
        "vmscope",
        replace_all("SHOW TAG VALUES WITH KEY = \"vm\" WHERE " + kHostFilter, "$host", h.name));
    bool web = false;
    for (const Series& m : vms.series)  // one series per measurement
      for (const auto& row : m.values) web |= row.size() > 1 && row[1] == "web";
    EXPECT_TRUE(web) << h.name;
  }
}

}  // namespace
}  // namespace vmscope::test::dashboards_json
