// Root tests, end to end with a real VM: how a guest's services answer, seen on its tap
// (vm_service, issue 12 item 3). A qemu (TCG) guest behind a tap on a bridge serves
// HTTP (busybox httpd: 200 for a file, 404 for a missing path), DNS (the static
// tests/helpers/dns_responder: NOERROR, NXDOMAIN, SERVFAIL, REFUSED by name) and has
// no listener on port 81 (refused); on request (/cgi-bin/connect) it connects out to a
// host listener or a closed host port. The test is every client, over IPv4 and IPv6,
// and knows each outcome and each connect time, so the agent's counts must be exact
// and its handshake latencies must lie within the clients' own connect times.
//
// The guest chatters by itself (ARP, IPv6 DAD/MLD/router solicitations), but it never
// opens a TCP connection, answers DNS or HTTP unasked: only those fields are asserted.
// One VM serves every test of the suite.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/unique_fd.h"
#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kBridge = "svcbr0";
const std::string kTap = "svctap0";
const std::string kVm = "svc1";
const std::string kHost4 = "10.99.2.1", kGuest4 = "10.99.2.2";
const std::string kHost6 = "fd00:99:2::1", kGuest6 = "fd00:99:2::2";
constexpr int kClosedGuestPort = 81;
constexpr int kHostListenPort = 9000, kClosedHostPort = 9001;
const std::string kDnsName = "vm.vmscope.test";  // the guest /init's configured name

sockaddr_storage addr_of(const std::string& ip, int port, socklen_t* len) {
  sockaddr_storage ss{};
  if (ip.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) != 1) throw std::runtime_error(ip);
    *len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, ip.c_str(), &a->sin_addr) != 1) throw std::runtime_error(ip);
    *len = sizeof *a;
  }
  return ss;
}

int64_t us_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
}

// A TCP connect from the namespace: 0 or the errno it ended with, and how long the
// connect took as the client sees it (SYN sent .. SYN-ACK or RST received, and more).
struct Connect {
  int err = 0;
  int64_t us = 0;
};
Connect tcp_connect(const Netns& ns, const std::string& ip, int port, UniqueFd& sock) {
  socklen_t len;
  const sockaddr_storage sa = addr_of(ip, port, &len);
  sock.reset(ns.socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK));
  if (!sock.valid()) return {errno, 0};
  const auto t0 = Clock::now();
  Connect c;
  if (connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
    c.err = errno;
    if (c.err == EINPROGRESS) {
      pollfd p{sock.get(), POLLOUT, 0};
      if (poll(&p, 1, 5000) != 1) {
        c.err = ETIMEDOUT;
      } else {
        socklen_t el = sizeof c.err;
        getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &c.err, &el);
      }
    }
  }
  c.us = us_since(t0);
  return c;
}

// One HTTP/1.0 GET: the status code (0 if none) and the body.
struct Http {
  int status = 0;
  std::string body;
  int64_t connect_us = 0;
};
Http http_get(const Netns& ns, const std::string& ip, const std::string& path) {
  UniqueFd s;
  const Connect c = tcp_connect(ns, ip, 80, s);
  Http h;
  h.connect_us = c.us;
  // The first IPv6 connect after boot waits ~1 s for neighbour discovery (the guest
  // answers only the second solicitation); the SYN leaves the tap after it.
  if (c.us > 200000)
    std::printf("[ note ] connect to %s:80 took %lld us\n", ip.c_str(), (long long)c.us);
  if (c.err != 0) {
    h.body = std::string("connect: ") + std::strerror(c.err);
    return h;
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + ip + "\r\n\r\n";
  if (send(s.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return h;
  std::string resp;
  char buf[4096];
  for (;;) {
    pollfd p{s.get(), POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) break;  // the CGI waits at most 3 s for nc
    const ssize_t n = recv(s.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  if (resp.rfind("HTTP/1.", 0) == 0 && resp.size() >= 12) h.status = std::stoi(resp.substr(9, 3));
  const size_t body = resp.find("\r\n\r\n");
  h.body = body == std::string::npos ? resp : resp.substr(body + 4);
  return h;
}

// One DNS query (type A, RD) on a fresh socket: the answer's RCODE (-1: no answer in
// 3 s, no retry: a retry would be a second query), the number of answers, and the RTT.
struct Dns {
  int rcode = -1;
  int answers = 0;
  int64_t us = 0;
};
Dns dns_query(const Netns& ns, const std::string& server, const std::string& name, uint16_t id) {
  std::string q;
  q += static_cast<char>(id >> 8);
  q += static_cast<char>(id & 0xff);
  q += std::string("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += std::string("\x00\x00\x01\x00\x01", 5);  // root, type A, class IN
  socklen_t len;
  const sockaddr_storage sa = addr_of(server, 53, &len);
  UniqueFd s(ns.socket(sa.ss_family, SOCK_DGRAM));
  Dns d;
  if (!s.valid()) return d;
  const auto t0 = Clock::now();
  if (sendto(s.get(), q.data(), q.size(), 0, reinterpret_cast<const sockaddr*>(&sa), len) < 0)
    return d;
  unsigned char buf[1500];
  for (;;) {
    pollfd p{s.get(), POLLIN, 0};
    if (poll(&p, 1, 3000) != 1) return d;
    const ssize_t n = recv(s.get(), buf, sizeof buf, 0);
    if (n >= 12 && buf[0] == (id >> 8) && buf[1] == (id & 0xff) && (buf[2] & 0x80)) {
      d.us = us_since(t0);
      d.rcode = buf[3] & 0x0f;
      d.answers = buf[6] << 8 | buf[7];
      return d;
    }
  }
}

// A host TCP listener (dual stack) in the namespace that accepts and closes every
// connection, so that the guest's nc ends.
class Listener {
 public:
  Listener(const Netns& ns, int port) : sock_(ns.socket(AF_INET6, SOCK_STREAM)) {
    if (!sock_.valid()) throw std::runtime_error("listener socket");
    const int on = 1, off = 0;
    setsockopt(sock_.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(sock_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    a.sin6_addr = in6addr_any;
    if (bind(sock_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(sock_.get(), 16))
      throw std::runtime_error(std::string("listener bind/listen: ") + std::strerror(errno));
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{sock_.get(), POLLIN, 0};
        if (poll(&p, 1, 100) == 1) {
          const int c = accept4(sock_.get(), nullptr, nullptr, SOCK_CLOEXEC);
          if (c >= 0) {
            close(c);
            ++accepted_;
          }
        }
      }
    });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
  }
  int accepted() const { return accepted_; }

 private:
  UniqueFd sock_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// The namespace with IPv6, the bridge with both host addresses, the tap and the VM.
struct ServiceVm {
  TempDir tmp{"vmscope-vm-service"};
  Netns ns{Netns::Ipv6::on};
  std::unique_ptr<Vm> vm;
  ServiceVm() {
    add_bridge_with_tap(ns, kBridge, kHost4 + "/24", kTap);
    // The tap is only a bridge port: no addresses, no IPv6 chatter of its own.
    ns.must("sysctl -qw net.ipv6.conf." + kTap + ".disable_ipv6=1");
    ns.must("ip -6 addr add " + kHost6 + "/64 dev " + kBridge + " nodad");
    vm = std::make_unique<Vm>(ns, tmp.path, kTap, kVm, kGuest4 + "/24", kGuest6 + "/64");
  }
};

// What the clients saw, for comparison with the agent's counts.
struct Seen {
  int http_2xx = 0, http_4xx = 0, refused = 0;
  int64_t accepted_connect_us = 0;         // sum over the connections the guest accepted
  std::vector<int64_t> accepted_connects;  // each of them, µs
  int dns_noerror = 0, dns_nxdomain = 0, dns_servfail = 0, dns_refused = 0;
  int64_t dns_rtt_us = 0;
  int out_ok = 0, out_refused = 0;
  int64_t out_request_us = 0;  // the CGI requests around the guest's connects
};

std::string where(const std::string& ip, const std::string& what) {
  return what + " via " + ip;
}

// Every client once; EXPECTs each outcome as the guest must answer it.
Seen exercise(const ServiceVm& s) {
  Seen seen;
  const Netns& ns = s.ns;
  auto get = [&](const std::string& ip, const std::string& path, int want) {
    const Http h = http_get(ns, ip, path);
    EXPECT_EQ(h.status, want) << where(ip, path) << ": " << h.body << "\nguest console:\n"
                              << s.vm->console_tail();
    if (h.status != want) return h;
    (want / 100 == 2 ? seen.http_2xx : seen.http_4xx)++;
    seen.accepted_connect_us += h.connect_us;
    seen.accepted_connects.push_back(h.connect_us);
    return h;
  };
  // HTTP: 200s and 404s over both families.
  for (const auto& [ip, n200, n404] : {std::tuple{kGuest4, 5, 3}, std::tuple{kGuest6, 3, 2}}) {
    for (int i = 0; i < n200; ++i) {
      const Http h = get(ip, "/index.html", 200);
      EXPECT_NE(h.body.find("vmscope test vm " + kGuest4), std::string::npos) << h.body;
    }
    for (int i = 0; i < n404; ++i) get(ip, "/missing-" + std::to_string(i), 404);
  }
  // Refused: nothing listens on the guest's port 81.
  for (const auto& [ip, n] : {std::pair{kGuest4, 3}, std::pair{kGuest6, 2}}) {
    for (int i = 0; i < n; ++i) {
      UniqueFd sock;
      const Connect c = tcp_connect(ns, ip, kClosedGuestPort, sock);
      EXPECT_EQ(c.err, ECONNREFUSED) << where(ip, "port 81") << ": " << std::strerror(c.err);
      if (c.err == ECONNREFUSED) ++seen.refused;
    }
  }
  // DNS: every RCODE the responder gives, over both families.
  uint16_t id = 0x5100;
  auto query = [&](const std::string& server, const std::string& name, int want, int& count) {
    const Dns d = dns_query(ns, server, name, id++);
    EXPECT_EQ(d.rcode, want) << where(server, name) << "\nguest console:\n" << s.vm->console_tail();
    if (d.rcode != want) return;
    EXPECT_EQ(d.answers, want == 0 ? 1 : 0) << where(server, name);
    ++count;
    seen.dns_rtt_us += d.us;
  };
  for (const auto& [ip, noerror, nxdomain] :
       {std::tuple{kGuest4, 4, 3}, std::tuple{kGuest6, 2, 2}}) {
    for (int i = 0; i < noerror; ++i) query(ip, kDnsName, 0, seen.dns_noerror);
    for (int i = 0; i < nxdomain; ++i)
      query(ip, "nx" + std::to_string(i) + ".vmscope.test", 3, seen.dns_nxdomain);
  }
  query(kGuest4, "servfail.vmscope.test", 2, seen.dns_servfail);
  query(kGuest6, "refused.vmscope.test", 5, seen.dns_refused);

  // The guest as a client: to a host listener (accepted) and a closed host port (RST).
  Listener listener(ns, kHostListenPort);
  auto out = [&](const std::string& host, int port, bool ok) {
    const auto t0 = Clock::now();
    const Http h = get(kGuest4, "/cgi-bin/connect?" + host + "," + std::to_string(port), 200);
    seen.out_request_us += us_since(t0);
    const std::string want = ok ? "connect ok" : "connect failed";
    EXPECT_NE(h.body.find(want), std::string::npos)
        << "guest connect to " << host << " port " << port << ": " << h.body;
    if (h.body.find(want) != std::string::npos) (ok ? seen.out_ok : seen.out_refused)++;
  };
  out(kHost4, kHostListenPort, true);
  out(kHost4, kHostListenPort, true);
  out(kHost6, kHostListenPort, true);
  out(kHost4, kClosedHostPort, false);
  out(kHost6, kClosedHostPort, false);
  for (int i = 0; i < 20 && listener.accepted() < seen.out_ok; ++i) usleep(50000);
  EXPECT_EQ(listener.accepted(), seen.out_ok);
  return seen;
}

class VmService : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    vm_image();
    setup_ = std::make_unique<ServiceVm>();
  }
  static void TearDownTestSuite() { setup_.reset(); }
  void SetUp() override { ASSERT_TRUE(setup_) << "the VM did not start"; }
  static std::unique_ptr<ServiceVm> setup_;
};
std::unique_ptr<ServiceVm> VmService::setup_;

// The guest's services over IPv4 and IPv6, without the agent: what the other test counts.
TEST_F(VmService, GuestAnswersHttpDnsAndConnectsOutOverIpv4AndIpv6) {
  const auto t0 = Clock::now();
  const Seen seen = exercise(*setup_);
  EXPECT_EQ(seen.http_2xx, 5 + 3 + 5);  // 5 of them the CGI requests
  EXPECT_EQ(seen.http_4xx, 3 + 2);
  EXPECT_EQ(seen.refused, 3 + 2);
  EXPECT_EQ(seen.dns_noerror, 4 + 2);
  EXPECT_EQ(seen.dns_nxdomain, 3 + 2);
  EXPECT_EQ(seen.out_ok, 3);
  EXPECT_EQ(seen.out_refused, 2);
  // What explains a slow first connect: the host's TCP retransmits and neighbour solicits.
  const std::string host = setup_->ns.capture(
      "nstat -asz TcpRetransSegs Icmp6OutNeighborSolicits Icmp6InNeighborAdvertisements | "
      "awk '!/^#/ {printf \"%s=%s \", $1, $2}'");
  std::printf(
      "[ figures ] clients alone: %.1f s; connects %lld us in all, DNS RTT %lld us; host %s\n",
      std::chrono::duration<double>(Clock::now() - t0).count(), (long long)seen.accepted_connect_us,
      (long long)seen.dns_rtt_us, host.c_str());
}

// vm_service counts exactly what the clients saw.
TEST_F(VmService, CountsEveryAnswerExactlyAndHandshakesWithinConnectTimes) {
  const ServiceVm& s = *setup_;
  auto agent = agent_in(s.ns);
  auto base = wait_point(*agent, "vm_service", {{"vm", kVm}}, 0, 10s);
  ASSERT_TRUE(base) << "no vm_service point for " << kVm << "\n" << agent->stderr_text();
  EXPECT_EQ(base->tags.at("bridge"), kBridge);
  EXPECT_EQ(base->tags.at("tap"), kTap);

  const Seen seen = exercise(s);
  auto last = wait_point(*agent, "vm_service", {{"vm", kVm}}, now_ns(), 5s);
  ASSERT_TRUE(last) << agent->stderr_text();
  auto d = [&](const char* f) { return last->i(f) - base->i(f); };

  const int accepted = seen.http_2xx + seen.http_4xx;
  EXPECT_EQ(d("tcp_syn_in"), accepted + seen.refused);
  EXPECT_EQ(d("tcp_accepted"), accepted);
  EXPECT_EQ(d("tcp_refused"), seen.refused);
  EXPECT_EQ(d("tcp_unanswered"), 0);
  EXPECT_GE(d("tcp_rst_out"), seen.refused);
  EXPECT_EQ(d("http_1xx"), 0);
  EXPECT_EQ(d("http_2xx"), seen.http_2xx);
  EXPECT_EQ(d("http_3xx"), 0);
  EXPECT_EQ(d("http_4xx"), seen.http_4xx);
  EXPECT_EQ(d("http_5xx"), 0);

  // Handshakes: one per accepted connection, each within its client's connect time.
  EXPECT_EQ(d("handshake_count"), accepted);
  EXPECT_GT(d("handshake_sum_us"), 0);
  EXPECT_LE(d("handshake_sum_us"), seen.accepted_connect_us);
  const std::pair<const char*, int64_t> buckets[] = {{"handshake_le_100us", 100},
                                                     {"handshake_le_1ms", 1000},
                                                     {"handshake_le_10ms", 10000},
                                                     {"handshake_le_100ms", 100000},
                                                     {"handshake_le_1s", 1000000}};
  int64_t prev = 0;
  for (const auto& [field, le_us] : buckets) {
    // A connection whose client connect took at most le_us had a handshake at most that.
    int64_t at_most = 0;
    for (int64_t us : seen.accepted_connects) at_most += us <= le_us;
    EXPECT_GE(d(field), at_most) << field;
    EXPECT_GE(d(field), prev) << field << ": buckets are cumulative";
    EXPECT_LE(d(field), d("handshake_count")) << field;
    prev = d(field);
  }
  // Under TCG on a busy machine a guest may take over 1 s to answer a SYN; then the
  // bound above is all that holds. Otherwise every handshake is in the last bucket.
  int64_t slowest = 0;
  for (int64_t us : seen.accepted_connects) slowest = std::max(slowest, us);
  if (slowest <= 1000000) {
    EXPECT_EQ(d("handshake_le_1s"), d("handshake_count")) << "every connect took under 1 s";
  }

  // The guest as a client.
  EXPECT_EQ(d("tcp_connect_out"), seen.out_ok + seen.out_refused);
  EXPECT_EQ(d("tcp_connect_ok"), seen.out_ok);
  EXPECT_EQ(d("tcp_connect_refused"), seen.out_refused);
  EXPECT_EQ(d("connect_count"), seen.out_ok);
  EXPECT_GT(d("connect_sum_us"), 0);
  EXPECT_LE(d("connect_sum_us"), seen.out_request_us);

  // DNS.
  const int answers = seen.dns_noerror + seen.dns_nxdomain + seen.dns_servfail + seen.dns_refused;
  EXPECT_EQ(d("dns_responses"), answers);
  EXPECT_EQ(d("dns_noerror"), seen.dns_noerror);
  EXPECT_EQ(d("dns_nxdomain"), seen.dns_nxdomain);
  EXPECT_EQ(d("dns_servfail"), seen.dns_servfail);
  EXPECT_EQ(d("dns_refused"), seen.dns_refused);
  EXPECT_EQ(d("dns_other"), 0);
  EXPECT_EQ(d("dns_latency_count"), answers);
  EXPECT_GT(d("dns_latency_sum_us"), 0);
  EXPECT_LE(d("dns_latency_sum_us"), seen.dns_rtt_us);

  std::printf(
      "[ figures ] clients: %d accepted (%d HTTP 2xx, %d 4xx), %d refused, connect times "
      "%lld us in all (slowest %lld us); DNS %d answers, RTT %lld us in all; guest out %d ok "
      "/ %d refused\n",
      accepted, seen.http_2xx, seen.http_4xx, seen.refused, (long long)seen.accepted_connect_us,
      (long long)slowest, answers, (long long)seen.dns_rtt_us, seen.out_ok, seen.out_refused);
  std::printf("[ figures ] vm_service deltas:");
  for (const auto& [k, v] : last->fields)
    if (base->fields.count(k)) std::printf(" %s=%lld", k.c_str(), (long long)d(k.c_str()));
  std::printf("\n");

  agent->signal(SIGTERM);
  const int st = agent->wait(10s);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << agent->stderr_text();
}

}  // namespace
}  // namespace vmscope::test
