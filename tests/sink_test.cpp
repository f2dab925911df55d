// Sink tests over real sockets, all on 127.0.0.1.
#include "output/sink.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "output/compress.h"
#include "output/sinks_impl.h"

namespace vmscope {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

UniqueFd bound_socket(int type, uint16_t port) {
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in a = loopback(port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) return UniqueFd();
  return fd;
}

// A listening TCP socket on 127.0.0.1 (port 0: ephemeral).
UniqueFd listen_tcp(uint16_t port = 0) {
  UniqueFd fd = bound_socket(SOCK_STREAM, port);
  if (!fd.valid() || ::listen(fd.get(), 8) < 0) return UniqueFd();
  return fd;
}

// A loopback port nobody listens on (connections are refused at once).
uint16_t unused_port() {
  UniqueFd fd = bound_socket(SOCK_STREAM, 0);
  return port_of(fd.get());
}

UniqueFd accept_within(int lfd, std::chrono::milliseconds timeout) {
  pollfd p{lfd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return UniqueFd();
  return UniqueFd(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
}

// Reads until n bytes arrived, EOF, or the timeout.
std::string read_n(int fd, size_t n, std::chrono::milliseconds timeout = 2000ms) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (out.size() < n && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) != 1) continue;
    const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// True when nothing arrives on fd within the timeout.
bool silent(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 0;
}

std::unique_ptr<Sink> must_make(const std::string& url, const SinkOptions& opts) {
  auto sink = make_sink(url, opts);
  EXPECT_TRUE(sink.ok()) << (sink.ok() ? "" : sink.error().message);
  return sink.ok() ? std::move(sink).value() : nullptr;
}

SinkOptions fast_options() {
  SinkOptions o;
  o.timeout = 500ms;
  o.reconnect_interval = 100ms;
  return o;
}

// ---- URL parsing ----

TEST(MakeSink, GoodUrls) {
  for (const char* url : {
           "-",
           "tcp://127.0.0.1",
           "tcp://127.0.0.1:9000",
           "tcp://telegraf.example:8094/",
           "tcp://[::1]:8094",
           "udp://localhost",
           "udp://[fe80::1]",
           "http://127.0.0.1:8086/write?db=vms",
           "https://influx.example/write?db=vms&rp=week&precision=ns",
           "http://influx.example/proxy/influx/write?precision=n&db=vms",
           "http://127.0.0.1:8086/api/v2/write?org=acme&bucket=vms",
           "https://influx.example:8181/api/v2/write?bucket=vms&precision=ns",
           "https://influx.example/proxy/api/v2/write?orgID=0123abcd&bucket=vm%20metrics",
       }) {
    SCOPED_TRACE(url);
    auto sink = make_sink(url, SinkOptions{});  // parses only: no resolving, no connecting
    ASSERT_TRUE(sink.ok()) << sink.error().message;
    EXPECT_EQ(sink.value()->url(), url);
  }
}

TEST(MakeSink, BadUrls) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "output \"\": empty URL"},
      {"tcp://", "output \"tcp://\": missing host"},
      {"udp://:8094", "output \"udp://:8094\": missing host"},
      {"http:///write?db=x", "output \"http:///write?db=x\": missing host"},
      {"telegraf:8094",
       "output \"telegraf:8094\": want -, tcp://HOST[:PORT], udp://HOST[:PORT], "
       "http(s)://HOST[:PORT]/write?db=NAME or "
       "http(s)://HOST[:PORT]/api/v2/write?org=ORG&bucket=BUCKET"},
      {"ftp://h", "output \"ftp://h\": unsupported scheme \"ftp\" (want tcp, udp, http or https)"},
      {"TCP://h", "output \"TCP://h\": unsupported scheme \"TCP\" (want tcp, udp, http or https)"},
      {"tcp://h:", "output \"tcp://h:\": bad port \"\""},
      {"tcp://h:0", "output \"tcp://h:0\": bad port \"0\""},
      {"tcp://h:65536", "output \"tcp://h:65536\": bad port \"65536\""},
      {"udp://h:80x", "output \"udp://h:80x\": bad port \"80x\""},
      {"tcp://h:8094/x",
       "output \"tcp://h:8094/x\": unexpected \"/x\" after the port (want tcp://HOST[:PORT])"},
      {"udp://h?x=1",
       "output \"udp://h?x=1\": unexpected \"?x=1\" after the port (want "
       "udp://HOST[:PORT])"},
      {"udp://::1:8094", "output \"udp://::1:8094\": IPv6 address must be in brackets, like [::1]"},
      {"tcp://[::1", "output \"tcp://[::1\": missing ] after IPv6 address"},
      {"tcp://[::1]x", "output \"tcp://[::1]x\": bad host \"[::1]x\""},
      {"http://h:8086",
       "output \"http://h:8086\": path \"\" is not an InfluxDB write endpoint (want "
       "/write?db=NAME or /api/v2/write?org=ORG&bucket=BUCKET)"},
      {"http://h/query?db=x",
       "output \"http://h/query?db=x\": path \"/query\" is not an InfluxDB write endpoint (want "
       "/write?db=NAME or /api/v2/write?org=ORG&bucket=BUCKET)"},
      {"http://h/api/v2/write?org=o",
       "output \"http://h/api/v2/write?org=o\": missing bucket= in the query (want "
       "/api/v2/write?org=ORG&bucket=BUCKET)"},
      {"http://h/api/v2/write?db=x",
       "output \"http://h/api/v2/write?db=x\": missing bucket= in the query (want "
       "/api/v2/write?org=ORG&bucket=BUCKET)"},
      {"https://h/api/v2/write?bucket=b&precision=n",
       "output \"https://h/api/v2/write?bucket=b&precision=n\": precision \"n\" not supported "
       "(timestamps are ns)"},
      {"https://h/api/v2/write?bucket=b&precision=ms",
       "output \"https://h/api/v2/write?bucket=b&precision=ms\": precision \"ms\" not supported "
       "(timestamps are ns)"},
      {"http://h/api/v2/write?org=my org&bucket=b",
       "output \"http://h/api/v2/write?org=my org&bucket=b\": libcurl refuses the URL: Bad query"},
      {"http://token:s3cret@h/api/v2/write?bucket=b",
       "output \"http://***@h/api/v2/write?bucket=b\": credentials in the URL are not supported; "
       "use the HTTP username/password options"},
      {"http://h/write",
       "output \"http://h/write\": missing db= in the query (want /write?db=NAME)"},
      {"https://h/write?db=&rp=x",
       "output \"https://h/write?db=&rp=x\": missing db= in the query (want /write?db=NAME)"},
      {"http://h/write?db=x&precision=s",
       "output \"http://h/write?db=x&precision=s\": precision \"s\" not supported (timestamps are "
       "ns)"},
      {"http://vm:s3cret@h/write?db=x",
       "output \"http://***@h/write?db=x\": credentials in the URL are not supported; use the "
       "HTTP username/password options"},
  };
  for (const auto& [url, want] : cases) {
    SCOPED_TRACE(url);
    auto sink = make_sink(url, SinkOptions{});
    ASSERT_FALSE(sink.ok());
    EXPECT_EQ(sink.error().message, want);
  }
}

// An https output with a CA bundle it cannot read is refused at start; http ones ignore it.
TEST(MakeSink, UnreadableCaFile) {
  SinkOptions opts;
  opts.tls_ca_file = "/nonexistent/ca.pem";
  auto sink = make_sink("https://h/api/v2/write?bucket=b", opts);
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.error().message,
            "output \"https://h/api/v2/write?bucket=b\": tls_ca_file /nonexistent/ca.pem: No such "
            "file or directory");
  EXPECT_TRUE(make_sink("http://h/api/v2/write?bucket=b", opts).ok());
}

// ---- Backlog ----

TEST(Backlog, DropsOldestWholeLines) {
  sink_detail::Backlog b(30);
  EXPECT_EQ(b.push("line-0001\nline-0002\nline-0003\n"), 0u);  // exactly 30 bytes
  EXPECT_EQ(b.push("line-0004\n"), 1u);
  EXPECT_EQ(b.pending(), "line-0002\nline-0003\nline-0004\n");
  EXPECT_EQ(b.push("a-much-longer-line-0005\n"), 3u);  // 24 bytes: all three 10-byte lines go
  EXPECT_EQ(b.pending(), "a-much-longer-line-0005\n");
  EXPECT_EQ(b.push("a line longer than the whole bound of 30\n"), 2u);  // everything, itself too
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.push("no newline"), 0u);  // completed, so line accounting stays right
  EXPECT_EQ(b.pending(), "no newline\n");
}

TEST(Backlog, KeepsThePartlyWrittenLine) {
  sink_detail::Backlog b(20);
  b.push("aaaaaaaaa\nbbbbbbbbb\n");
  EXPECT_EQ(b.consume(4), 0u);  // "aaaa" went out on a stream
  EXPECT_TRUE(b.partial());
  // Over the bound: the rest of a's line must still go out; b's line is the oldest droppable.
  EXPECT_EQ(b.push("ccccccccc\n"), 1u);
  EXPECT_EQ(b.pending(), "aaaaa\nccccccccc\n");
  EXPECT_EQ(b.consume(6), 1u);
  EXPECT_FALSE(b.partial());
  b.consume(2);
  EXPECT_EQ(b.drop_partial(), 1u);  // the stream died mid-line
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.drop_partial(), 0u);
}

// ---- stdout ----

TEST(StdoutSink, WritesAndCounts) {
  auto sink = must_make("-", SinkOptions{});
  ASSERT_TRUE(sink);
  testing::internal::CaptureStdout();
  sink->write("a v=1i\nb v=2i\n");
  sink->flush();
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "a v=1i\nb v=2i\n");
  const SinkStats s = sink->stats();
  EXPECT_EQ(s.lines_written, 2u);
  EXPECT_EQ(s.bytes_written, 14u);
  EXPECT_EQ(s.lines_dropped, 0u);
}

// ---- TCP ----

TEST(TcpSink, DeliversExactBytes) {
  UniqueFd lfd = listen_tcp();
  ASSERT_TRUE(lfd.valid());
  auto sink = must_make("tcp://127.0.0.1:" + std::to_string(port_of(lfd.get())), fast_options());
  ASSERT_TRUE(sink);
  const std::string first = "cpu,vm=web1 usage=0.5 1000\nnet,vm=web1 rx=10i 1000\n";
  sink->write(first);
  UniqueFd conn = accept_within(lfd.get(), 1000ms);
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(read_n(conn.get(), first.size()), first);
  const std::string second = "cpu,vm=web1 usage=0.25 2000\n";
  sink->write(second);
  EXPECT_EQ(read_n(conn.get(), second.size()), second);
  EXPECT_TRUE(silent(conn.get(), 50ms));
  const SinkStats s = sink->stats();
  EXPECT_EQ(s.lines_written, 3u);
  EXPECT_EQ(s.bytes_written, first.size() + second.size());
  EXPECT_EQ(s.lines_dropped, 0u);
}

TEST(TcpSink, QueuesUntilListenerAppears) {
  const uint16_t port = unused_port();
  auto sink = must_make("tcp://127.0.0.1:" + std::to_string(port), fast_options());
  ASSERT_TRUE(sink);
  sink->write("l1 v=1i\n");  // refused
  EXPECT_EQ(sink->stats().lines_written, 0u);

  UniqueFd lfd = listen_tcp(port);
  ASSERT_TRUE(lfd.valid());
  sink->write("l2 v=2i\n");  // within reconnect_interval of the failure: only queued
  EXPECT_FALSE(accept_within(lfd.get(), 0ms).valid());

  std::this_thread::sleep_for(120ms);
  sink->write("l3 v=3i\n");
  UniqueFd conn = accept_within(lfd.get(), 1000ms);
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(read_n(conn.get(), 24), "l1 v=1i\nl2 v=2i\nl3 v=3i\n");
  const SinkStats s = sink->stats();
  EXPECT_EQ(s.lines_written, 3u);
  EXPECT_EQ(s.lines_dropped, 0u);
}

TEST(TcpSink, PeerCloseKeepsNextBatchAndReconnects) {
  UniqueFd lfd = listen_tcp();
  ASSERT_TRUE(lfd.valid());
  auto sink = must_make("tcp://127.0.0.1:" + std::to_string(port_of(lfd.get())), fast_options());
  ASSERT_TRUE(sink);
  sink->write("a v=1i\n");
  UniqueFd conn = accept_within(lfd.get(), 1000ms);
  ASSERT_EQ(read_n(conn.get(), 7), "a v=1i\n");
  conn.reset();  // Telegraf restarts
  std::this_thread::sleep_for(20ms);
  sink->write("b v=2i\n");  // noticed before sending: queued, not lost in a dead socket
  std::this_thread::sleep_for(120ms);
  sink->write("c v=3i\n");
  conn = accept_within(lfd.get(), 1000ms);
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(read_n(conn.get(), 14), "b v=2i\nc v=3i\n");
  EXPECT_EQ(sink->stats().lines_written, 3u);
  EXPECT_EQ(sink->stats().lines_dropped, 0u);
}

TEST(TcpSink, BacklogBoundDropsOldestLines) {
  const uint16_t port = unused_port();
  SinkOptions opts = fast_options();
  opts.max_backlog_bytes = 30;
  auto sink = must_make("tcp://127.0.0.1:" + std::to_string(port), opts);
  ASSERT_TRUE(sink);
  for (int i = 1; i <= 5; ++i) sink->write("line-000" + std::to_string(i) + "\n");  // 10 bytes
  EXPECT_EQ(sink->stats().lines_dropped, 2u);
  EXPECT_EQ(sink->stats().lines_written, 0u);

  UniqueFd lfd = listen_tcp(port);
  ASSERT_TRUE(lfd.valid());
  sink->flush();  // the exit flush does not wait for reconnect_interval
  UniqueFd conn = accept_within(lfd.get(), 1000ms);
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(read_n(conn.get(), 30), "line-0003\nline-0004\nline-0005\n");
  EXPECT_EQ(sink->stats().lines_written, 3u);
  EXPECT_EQ(sink->stats().lines_dropped, 2u);
}

TEST(TcpSink, SlowReaderBoundsWriteAndKeepsTheRest) {
  UniqueFd lfd = listen_tcp();  // not accepted yet: a peer that reads nothing for now
  ASSERT_TRUE(lfd.valid());
  SinkOptions opts = fast_options();
  opts.timeout = 200ms;
  opts.max_backlog_bytes = 64 << 20;
  auto sink = must_make("tcp://127.0.0.1:" + std::to_string(port_of(lfd.get())), opts);
  ASSERT_TRUE(sink);
  std::string data;
  constexpr size_t kLines = 160000;  // 16 MB: more than the kernel will buffer
  for (size_t i = 0; i < kLines; ++i) {
    std::string line = "m,i=" + std::to_string(i) + " v=";
    line.append(99 - line.size(), 'x');
    data += line + "\n";
  }
  const auto t0 = Clock::now();
  sink->write(data);
  EXPECT_LT(Clock::now() - t0, 1500ms);
  SinkStats s = sink->stats();
  EXPECT_LT(s.lines_written, kLines);
  EXPECT_GT(s.bytes_written, 0u);

  UniqueFd conn = accept_within(lfd.get(), 1000ms);
  ASSERT_TRUE(conn.valid());
  std::string got;
  std::thread reader([&] { got = read_n(conn.get(), data.size(), 4000ms); });
  const auto deadline = Clock::now() + 4000ms;
  while (sink->stats().lines_written < kLines && Clock::now() < deadline) sink->flush();
  reader.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);  // partial sends resumed exactly where they stopped
  s = sink->stats();
  EXPECT_EQ(s.lines_written, kLines);
  EXPECT_EQ(s.bytes_written, data.size());
  EXPECT_EQ(s.lines_dropped, 0u);
}

// ---- UDP ----

TEST(UdpSink, DatagramsSplitOnLineBoundaries) {
  UniqueFd rx = bound_socket(SOCK_DGRAM, 0);
  ASSERT_TRUE(rx.valid());
  auto sink = must_make("udp://127.0.0.1:" + std::to_string(port_of(rx.get())), fast_options());
  ASSERT_TRUE(sink);
  std::string data;
  size_t lines = 0;
  for (int i = 0; i < 60; ++i, ++lines) {
    std::string line = "m,i=" + std::to_string(i) + " s=\"";
    line.append(static_cast<size_t>(20 + (i * 37) % 180), 'y');
    data += line + "\"\n";
    if (i == 30) {  // one line longer than a datagram group
      data += "big s=\"" + std::string(2000, 'z') + "\"\n";
      ++lines;
    }
  }
  sink->write(data);

  std::string got;
  std::vector<size_t> sizes;
  char buf[65536];
  while (got.size() < data.size()) {
    pollfd p{rx.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) break;
    const ssize_t n = ::recv(rx.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    const std::string_view dgram(buf, static_cast<size_t>(n));
    EXPECT_EQ(dgram.back(), '\n');
    const size_t nl = static_cast<size_t>(std::count(dgram.begin(), dgram.end(), '\n'));
    EXPECT_TRUE(dgram.size() <= 1400 || nl == 1) << dgram.size() << " bytes, " << nl << " lines";
    sizes.push_back(dgram.size());
    got.append(dgram);
  }
  EXPECT_EQ(got, data);
  EXPECT_GT(sizes.size(), 2u);
  EXPECT_NE(std::find(sizes.begin(), sizes.end(), 2009u), sizes.end());  // the big line alone
  EXPECT_EQ(sink->stats().lines_written, lines);
  EXPECT_EQ(sink->stats().bytes_written, data.size());
}

TEST(UdpSink, GroupsGreedily) {
  UniqueFd rx = bound_socket(SOCK_DGRAM, 0);
  ASSERT_TRUE(rx.valid());
  auto sink = must_make("udp://127.0.0.1:" + std::to_string(port_of(rx.get())), fast_options());
  ASSERT_TRUE(sink);
  const std::string line = std::string(299, 'a') + "\n";  // 300 bytes: 4 fit in 1400
  std::string data;
  for (int i = 0; i < 10; ++i) data += line;
  sink->write(data);
  std::vector<size_t> sizes;
  char buf[4096];
  for (int i = 0; i < 3; ++i) {
    pollfd p{rx.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    sizes.push_back(static_cast<size_t>(::recv(rx.get(), buf, sizeof buf, 0)));
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{1200, 1200, 600}));
  EXPECT_TRUE(silent(rx.get(), 20ms));
}

// ---- HTTP ----

// The body as InfluxDB reads it: gunzipped when sent with Content-Encoding: gzip.
std::string gunzip_body(std::string_view gz) {
  auto out = gunzip(gz);
  return out ? *out : "<bad gzip>";
}

struct Request {
  std::string request_line;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A tiny HTTP/1.1 server on 127.0.0.1 answering with scripted statuses (204 once the script
// runs out; 0 = read the request and never answer). Keeps connections alive like InfluxDB.
class HttpServer {
 public:
  explicit HttpServer(uint16_t port = 0) : lfd_(listen_tcp(port)) {
    thread_ = std::thread([this] { run(); });
  }
  ~HttpServer() {
    stop_ = true;
    thread_.join();
  }
  bool ok() const { return lfd_.valid(); }
  uint16_t port() const { return port_of(lfd_.get()); }
  std::string url(std::string_view target) const {
    return "http://127.0.0.1:" + std::to_string(port()) + std::string(target);
  }
  void script(std::vector<int> statuses) {
    std::lock_guard lock(mu_);
    statuses_.assign(statuses.begin(), statuses.end());
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void run() {
    while (!stop_) {
      UniqueFd conn = accept_within(lfd_.get(), 20ms);
      if (conn.valid()) serve(conn.get());
    }
  }

  // Reads more of the connection; false on EOF/error/stop.
  bool fill(int fd, std::string& in) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) != 1) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<size_t>(n));
      return true;
    }
    return false;
  }

  void serve(int fd) {
    std::string in;
    for (;;) {
      size_t hdr_end;
      while ((hdr_end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!fill(fd, in)) return;
      }
      Request req;
      size_t pos = in.find("\r\n");
      req.request_line = in.substr(0, pos);
      while (pos < hdr_end) {
        const size_t next = in.find("\r\n", pos + 2);
        const std::string h = in.substr(pos + 2, next - pos - 2);
        const size_t colon = h.find(':');
        std::string name = h.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        if (colon != std::string::npos)
          req.headers[name] = h.substr(h.find_first_not_of(' ', colon + 1));
        pos = next;
      }
      const size_t len =
          std::stoul(req.headers.count("content-length") ? req.headers["content-length"] : "0");
      while (in.size() < hdr_end + 4 + len) {
        if (!fill(fd, in)) return;
      }
      req.body = in.substr(hdr_end + 4, len);
      if (req.headers.count("content-encoding") && req.headers["content-encoding"] == "gzip")
        req.body = gunzip_body(req.body);
      in.erase(0, hdr_end + 4 + len);
      int status = 204;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(req);
        if (!statuses_.empty()) {
          status = statuses_.front();
          statuses_.pop_front();
        }
      }
      if (status == 0) {  // hang: the client must give up on its own
        while (fill(fd, in)) {
        }
        return;
      }
      std::string body;
      if (status == 400) body = R"({"error":"unable to parse 'bad': missing fields"})";
      if (status >= 500) body = R"({"error":"timeout"})";
      const std::string resp = "HTTP/1.1 " + std::to_string(status) +
                               " X\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\nContent-Type: application/json\r\n\r\n" + body;
      if (::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(resp.size())) {
        return;
      }
    }
  }

  UniqueFd lfd_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::deque<int> statuses_;
  std::vector<Request> requests_;
  std::thread thread_;
};

class HttpSinkTest : public testing::Test {
 protected:
  void SetUp() override {
    // The test server is on 127.0.0.1: never let libcurl go through a proxy from the environment.
    for (const char* v :
         {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      unsetenv(v);
    }
    setenv("no_proxy", "*", 1);
  }
};

TEST_F(HttpSinkTest, PostsWithBasicAuth) {
  HttpServer server;
  ASSERT_TRUE(server.ok());
  SinkOptions opts = fast_options();
  opts.http_username = "vm";
  opts.http_password = "s3cret";
  auto sink = must_make(server.url("/write?db=vms&precision=ns"), opts);
  ASSERT_TRUE(sink);
  const std::string lines = "cpu,vm=a usage=0.5 1\ncpu,vm=b usage=1.5 1\n";
  sink->write(lines);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].request_line, "POST /write?db=vms&precision=ns HTTP/1.1");
  EXPECT_EQ(reqs[0].headers.at("authorization"), "Basic dm06czNjcmV0");  // vm:s3cret
  EXPECT_EQ(reqs[0].headers.at("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(reqs[0].headers.count("expect"), 0u);
  EXPECT_EQ(reqs[0].headers.at("content-encoding"), "gzip");
  EXPECT_EQ(reqs[0].body, lines);
  SinkStats s = sink->stats();
  EXPECT_EQ(s.lines_written, 2u);
  EXPECT_EQ(s.bytes_written, lines.size());

  sink->write("mem,vm=a used=1i 2\n");  // same connection, next request
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[1].body, "mem,vm=a used=1i 2\n");
  EXPECT_EQ(sink->stats().lines_written, 3u);
}

// InfluxDB 2.x/3.x: /api/v2/write with the token, precision=ns said explicitly, gzip body.
TEST_F(HttpSinkTest, V2PostsWithTokenAndNanosecondPrecision) {
  HttpServer server;
  ASSERT_TRUE(server.ok());
  SinkOptions opts = fast_options();
  opts.http_token = "tok-123==";
  opts.http_username = "ignored";  // basic auth is for /write only
  opts.http_password = "ignored";
  const std::string url = server.url("/api/v2/write?org=acme&bucket=vms");
  auto sink = must_make(url, opts);
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->url(), url) << "logs and the spool name the URL as configured";
  sink->write("cpu,vm=a usage=0.5 1\n");
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].request_line, "POST /api/v2/write?org=acme&bucket=vms&precision=ns HTTP/1.1");
  EXPECT_EQ(reqs[0].headers.at("authorization"), "Token tok-123==");
  EXPECT_EQ(reqs[0].headers.at("content-encoding"), "gzip");
  EXPECT_EQ(reqs[0].body, "cpu,vm=a usage=0.5 1\n");
  EXPECT_EQ(sink->stats().lines_written, 1u);

  // A precision given (ns) is kept, not repeated; no token: no Authorization header.
  sink.reset();  // the test server serves one connection at a time
  auto plain = must_make(server.url("/api/v2/write?precision=ns&bucket=vms"), fast_options());
  ASSERT_TRUE(plain);
  plain->write("m v=1i 2\n");
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[1].request_line,
            "POST /api/v2/write?precision=ns&bucket=vms HTTP/1.1");
  EXPECT_EQ(server.requests()[1].headers.count("authorization"), 0u);
}

// 2.x's 1.x-compatible /write takes the token too; a username means basic auth instead.
TEST_F(HttpSinkTest, V1SendsTheTokenUnlessAUsernameIsSet) {
  HttpServer server;
  ASSERT_TRUE(server.ok());
  SinkOptions opts = fast_options();
  opts.http_token = "tok";
  auto sink = must_make(server.url("/write?db=vms"), opts);
  ASSERT_TRUE(sink);
  sink->write("a v=1i 1\n");
  sink.reset();  // the test server serves one connection at a time
  opts.http_username = "vm";
  opts.http_password = "s3cret";
  auto basic = must_make(server.url("/write?db=vms"), opts);
  ASSERT_TRUE(basic);
  basic->write("b v=1i 1\n");
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].request_line, "POST /write?db=vms HTTP/1.1");
  EXPECT_EQ(reqs[0].headers.at("authorization"), "Token tok");
  EXPECT_EQ(reqs[1].headers.at("authorization"), "Basic dm06czNjcmV0");
}

// A 401 (a wrong or missing token) keeps the batch: once the token is fixed it is delivered.
TEST_F(HttpSinkTest, UnauthorizedKeepsBatchQueued) {
  HttpServer server;
  ASSERT_TRUE(server.ok());
  server.script({401, 204});
  auto sink = must_make(server.url("/api/v2/write?bucket=vms"), fast_options());
  ASSERT_TRUE(sink);
  sink->write("a v=1i 1\n");
  EXPECT_EQ(sink->stats().lines_written, 0u);
  EXPECT_EQ(sink->pending_bytes(), 9u);
  sink->flush();
  EXPECT_EQ(sink->stats().lines_written, 1u);
  EXPECT_EQ(sink->stats().lines_dropped, 0u);
}

TEST_F(HttpSinkTest, ServerErrorKeepsBatchQueued) {
  HttpServer server;
  ASSERT_TRUE(server.ok());
  server.script({500, 204});
  auto sink = must_make(server.url("/write?db=vms"), fast_options());
  ASSERT_TRUE(sink);
  sink->write("a v=1i 1\n");
  EXPECT_EQ(sink->stats().lines_written, 0u);
  sink->write("b v=2i 2\n");
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, "a v=1i 1\n");
  EXPECT_EQ(reqs[1].body, "a v=1i 1\nb v=2i 2\n");
  const SinkStats s = sink->stats();
  EXPECT_EQ(s.lines_written, 2u);
  EXPECT_EQ(s.lines_dropped, 0u);
}

TEST_F(HttpSinkTest, BadRequestDropsBatch) {
  HttpServer server;
  ASSERT_TRUE(server.ok());
  server.script({400, 204});
  auto sink = must_make(server.url("/write?db=vms"), fast_options());
  ASSERT_TRUE(sink);
  sink->write("bad\nalso bad\n");
  EXPECT_EQ(sink->stats().lines_dropped, 2u);
  sink->write("good v=1i 1\n");
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].body, "good v=1i 1\n");
  EXPECT_EQ(sink->stats().lines_written, 1u);
  EXPECT_EQ(sink->stats().lines_dropped, 2u);
}

TEST_F(HttpSinkTest, UnreachableThenFlushDelivers) {
  const uint16_t port = unused_port();
  auto sink =
      must_make("http://127.0.0.1:" + std::to_string(port) + "/write?db=vms", fast_options());
  ASSERT_TRUE(sink);
  sink->write("a v=1i 1\n");
  EXPECT_EQ(sink->stats().lines_written, 0u);
  HttpServer server(port);
  ASSERT_TRUE(server.ok());
  sink->flush();
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].body, "a v=1i 1\n");
  EXPECT_EQ(sink->stats().lines_written, 1u);
}

TEST_F(HttpSinkTest, UndeliveredLinesCanBeTakenBackForTheSpool) {
  const uint16_t port = unused_port();
  auto sink =
      must_make("http://127.0.0.1:" + std::to_string(port) + "/write?db=vms", fast_options());
  ASSERT_TRUE(sink);
  sink->write("a v=1i 1\nb v=2i 2\n");
  EXPECT_EQ(sink->pending_bytes(), 18u);
  EXPECT_EQ(sink->take_unsent(), "a v=1i 1\nb v=2i 2\n");
  EXPECT_EQ(sink->pending_bytes(), 0u);
  HttpServer server(port);
  ASSERT_TRUE(server.ok());
  sink->flush();
  EXPECT_TRUE(server.requests().empty()) << "taken-back lines are not sent again";
}

TEST_F(HttpSinkTest, HangingServerBoundedByTimeout) {
  HttpServer server;
  ASSERT_TRUE(server.ok());
  server.script({0, 204});
  SinkOptions opts = fast_options();
  opts.timeout = 200ms;
  auto sink = must_make(server.url("/write?db=vms"), opts);
  ASSERT_TRUE(sink);
  const auto t0 = Clock::now();
  sink->write("a v=1i 1\n");
  EXPECT_LT(Clock::now() - t0, 1000ms);
  EXPECT_EQ(sink->stats().lines_written, 0u);
  sink->flush();
  EXPECT_EQ(sink->stats().lines_written, 1u);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].body, "a v=1i 1\n");
}

}  // namespace
}  // namespace vmscope
