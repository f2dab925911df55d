// Root tests of the InfluxDB 2.x/3.x output and of bad output input, against loopback
// receivers (http_receiver.h) in a namespace of the test's own: the real agent writes to
// /api/v2/write over HTTPS with its token, and each broken output (a bad URL, nothing
// listening, a certificate of another CA, a 401, a --listen port in use) costs one line
// naming it while the other outputs keep receiving every tick.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>

#include "http_receiver.h"
#include "output/compress.h"
#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test {
namespace {

const std::string kToken = "vmscope-test-token_0123456789==";

// Measurement names of each timestamp's lines, from line protocol text.
using Ticks = std::map<int64_t, std::multiset<std::string>>;
void add_lines(const std::string& text, Ticks& ticks, size_t& bad) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto p = parse_point(line);
    if (!p || p->timestamp <= 0) {
      ++bad;
      continue;
    }
    ticks[p->timestamp].insert(p->measurement);
  }
}

// Polls until pred holds or 15 s pass.
bool eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 300; ++i) {
    if (pred()) return true;
    usleep(50000);
  }
  return false;
}

int vmscope_lines(Child& agent) {
  int n = 0;
  for (const auto& l : agent.lines())
    if (l.rfind("vmscope ", 0) == 0) ++n;
  return n;
}

TEST(InfluxV2, HttpsWriteCarriesTokenQueryAndGzipLineProtocol) {
  Netns ns;
  TempDir dir("vmscope-v2");
  ASSERT_FALSE(dir.path.empty());
  TestCa ca(dir.path, "ca");
  HttpReceiver v2(ns, 204, &ca);
  HttpReceiver v1(ns, 204);  // 2.x's 1.x-compatible /write takes the token too
  auto vm = busy_vm("v2vm", {"BUSY_MB=4", "BUSY_THREADS=1"});
  const std::string v2_url = v2.url("https", "/api/v2/write?org=acme&bucket=vms");
  Child agent(vmscope_bin(),
              {"run", "--interval", "0.3", "--log-level", "debug", "--output", v2_url, "--output",
               v1.url("http", "/write?db=vms"), "--output", "-", "--tls-ca-file", ca.ca_file,
               "--spool-dir", dir.path + "/spool"},
              SpawnOptions{ns.name(), "", {"VMSCOPE_INFLUX_TOKEN=" + kToken}, false});
  ASSERT_TRUE(wait_point(agent, "resource_usage", {{"vm", "v2vm"}}, 0, 10s)) << agent.stderr_text();
  ASSERT_TRUE(eventually([&] { return v2.requests().size() >= 5 && v1.requests().size() >= 5; }))
      << v2.requests().size() << " v2 and " << v1.requests().size() << " v1 requests\n"
      << agent.stderr_text();
  agent.signal(SIGTERM);
  const int st = agent.wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << agent.stderr_text();
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();

  Ticks posted, printed;
  size_t bad = 0;
  for (const ReceivedRequest& r : v2.requests()) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/api/v2/write");
    EXPECT_EQ(r.args, (std::map<std::string, std::string>{
                          {"org", "acme"}, {"bucket", "vms"}, {"precision", "ns"}}));
    EXPECT_EQ(r.headers.count("Authorization") ? r.headers.at("Authorization") : "",
              "Token " + kToken);
    EXPECT_EQ(r.headers.count("Content-Encoding") ? r.headers.at("Content-Encoding") : "", "gzip");
    auto text = gunzip(r.body);
    ASSERT_TRUE(text) << text.error().message;
    add_lines(*text, posted, bad);
  }
  for (const ReceivedRequest& r : v1.requests()) {
    EXPECT_EQ(r.path, "/write");
    EXPECT_EQ(r.args, (std::map<std::string, std::string>{{"db", "vms"}}));
    EXPECT_EQ(r.headers.count("Authorization") ? r.headers.at("Authorization") : "",
              "Token " + kToken);
  }
  EXPECT_EQ(bad, 0u) << "lines that are not line protocol";
  for (const auto& l : agent.lines()) {
    size_t ignored = 0;
    add_lines(l, printed, ignored);
  }
  // Every tick both saw carries the same measurements on the wire as on stdout.
  int common = 0;
  for (const auto& [ts, names] : posted) {
    if (!printed.count(ts)) continue;
    ++common;
    EXPECT_EQ(names, printed[ts]) << "tick " << ts;
  }
  EXPECT_GE(common, 4);
  std::set<std::string> measurements;
  for (const auto& [ts, names] : posted) measurements.insert(names.begin(), names.end());
  for (const char* m : {"vmscope", "resource_usage", "kinfo_mem"})
    EXPECT_TRUE(measurements.count(m)) << m << " never posted";
  EXPECT_EQ(agent.stderr_text().find(kToken), std::string::npos) << "the token was logged";
}

// The warning and error lines of the agent's log that contain `what`.
std::vector<std::string> problem_lines(const std::string& log, const std::string& what) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if ((line.find(" warning ") != std::string::npos ||
         line.find(" error ") != std::string::npos) &&
        line.find(what) != std::string::npos)
      out.push_back(line);
  return out;
}

TEST(BadOutputs, EachCostsOneLineNamingItAndTheOthersKeepWorking) {
  Netns ns;
  TempDir dir("vmscope-bad");
  ASSERT_FALSE(dir.path.empty());
  TestCa served(dir.path, "served"), trusted(dir.path, "trusted");
  HttpReceiver tls(ns, 204, &served);  // the agent trusts another CA only
  HttpReceiver denied(ns, 401);
  HttpReceiver good(ns, 204);
  uint16_t in_use = 0;
  const int listener = listen_loopback(ns, in_use);  // its port is in use for --listen
  ASSERT_GE(listener, 0);

  const std::string bad_url = "http://127.0.0.1:8086/api/v2/write?org=acme";  // no bucket
  const std::string unreachable_url = "http://127.0.0.1:1/api/v2/write?bucket=vms";
  const std::string tls_url = tls.url("https", "/api/v2/write?bucket=vms");
  const std::string denied_url = denied.url("http", "/api/v2/write?org=acme&bucket=vms");
  const std::string good_url = good.url("http", "/api/v2/write?org=acme&bucket=vms");
  const std::string listen = "127.0.0.1:" + std::to_string(in_use);
  Child agent(vmscope_bin(), {"run",           "--interval",  "0.25",
                              "--listen",      listen,        "--output",
                              bad_url,         "--output",    unreachable_url,
                              "--output",      tls_url,       "--output",
                              denied_url,      "--output",    good_url,
                              "--output",      "-",           "--tls-ca-file",
                              trusted.ca_file, "--spool-dir", dir.path + "/spool"},
              SpawnOptions{ns.name(), "", {"VMSCOPE_INFLUX_TOKEN=" + kToken}, false});
  // Many ticks, each reaching stdout and the good receiver, while the others keep failing.
  ASSERT_TRUE(eventually([&] {
    return vmscope_lines(agent) >= 12 && good.requests().size() >= 12;
  })) << vmscope_lines(agent)
      << " ticks on stdout, " << good.requests().size() << " posted\n"
      << agent.stderr_text();
  EXPECT_GE(denied.requests().size(), 2u) << "the 401 output retries";
  EXPECT_TRUE(tls.requests().empty()) << "no request passes a failed TLS handshake";
  agent.signal(SIGTERM);
  const int st = agent.wait(15s);
  ASSERT_TRUE(WIFEXITED(st)) << agent.stderr_text();
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();
  close(listener);

  const std::string log = agent.stderr_text();
  const std::pair<std::string, std::string> expected[] = {
      {"output \"" + bad_url + "\"",
       "output \"" + bad_url +
           "\": missing bucket= in the query (want /api/v2/write?org=ORG&bucket=BUCKET): output "
           "skipped"},
      {"output " + unreachable_url, "output " + unreachable_url + ": disconnected: "},
      {"output " + tls_url, "output " + tls_url + ": disconnected: SSL certificate problem"},
      {"output " + denied_url,
       "output " + denied_url +
           ": HTTP 401 (check the credentials: http.token, VMSCOPE_INFLUX_TOKEN or "
           "http.username/password): {\"code\":\"unauthorized\",\"message\":\"unauthorized "
           "access\"}"},
      {"--listen " + listen, "metrics endpoint (--listen " + listen +
                                 "): bind: Address already in use: /metrics is not served"},
  };
  for (const auto& [what, want] : expected) {
    const auto lines = problem_lines(log, what);
    ASSERT_EQ(lines.size(), 1u) << what << "\n" << log;
    EXPECT_NE(lines[0].find(want), std::string::npos) << lines[0];
  }
  EXPECT_TRUE(problem_lines(log, "output " + good_url).empty()) << log;
  EXPECT_EQ(log.find(kToken), std::string::npos) << "the token was logged";
  const auto& posted = good.requests();
  ASSERT_FALSE(posted.empty());
  auto text = gunzip(posted.back().body);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_NE(text->find("vmscope,"), std::string::npos) << *text;
}

}  // namespace
}  // namespace vmscope::test
