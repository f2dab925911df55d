// Internals shared by the sink implementations (user/output only).
#pragma once

#include <netdb.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"
#include "common/unique_fd.h"
#include "output/sink.h"

namespace vmscope::sink_detail {

using Clock = std::chrono::steady_clock;

// Lines waiting for their destination. Bounded: beyond max_bytes the oldest whole lines go.
class Backlog {
 public:
  explicit Backlog(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Queues complete lines (a missing final '\n' is added) and enforces the bound; never drops the
  // unsent rest of a line that is partly written to a stream. Returns the lines dropped.
  uint64_t push(std::string_view lines);
  std::string_view pending() const { return std::string_view(buf_).substr(head_); }
  bool empty() const { return head_ == buf_.size(); }
  size_t size() const { return buf_.size() - head_; }
  // Removes and returns the pending whole lines after a partly written one (which stays).
  std::string take_unsent();
  // The first n pending bytes were delivered; returns how many lines that completed.
  uint64_t consume(size_t n);
  // The first n pending bytes (whole lines) will never be delivered; returns the lines dropped.
  uint64_t drop(size_t n);
  // The front is the rest of a line partly written to a stream.
  bool partial() const { return partial_; }
  // That stream died: its half line is useless on a new one. Returns the lines dropped (0 or 1).
  uint64_t drop_partial();

 private:
  std::string buf_;
  size_t head_ = 0;  // bytes before head_ are delivered and wait for compaction
  size_t max_bytes_;
  bool partial_ = false;
};

// Logs a destination's up/down transitions only, so an outage logs one line, not one per write.
class LinkLog {
 public:
  explicit LinkLog(std::string url) : url_(std::move(url)) {}
  // Warns "output URL: WHAT: WHY" unless already down.
  void down(std::string_view what, std::string_view why);
  // Logs "output URL: connected" unless already up.
  void up();

 private:
  enum class State { kUnknown, kUp, kDown };
  std::string url_;
  State state_ = State::kUnknown;
};

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// getaddrinfo for host:port (IPv4 and IPv6; names like "localhost" included).
Result<AddrInfoPtr> resolve(const std::string& host, uint16_t port, int socktype);

// poll() for events until deadline: revents, 0 on timeout, -1 on error (EINTR retried).
int wait_fd(int fd, short events, Clock::time_point deadline);

size_t count_lines(std::string_view s);

// What the socket sinks (tcp, udp) share: destination, bounded backlog, link state, the
// socket and the retry clock; each subclass delivers the backlog its own way.
class SocketSink : public Sink {
 public:
  SocketSink(std::string url, std::string host, uint16_t port, const SinkOptions& opts)
      : url_(std::move(url)),
        host_(std::move(host)),
        port_(port),
        opts_(opts),
        backlog_(opts.max_backlog_bytes),
        link_(url_) {}

  const std::string& url() const override { return url_; }
  void write(std::string_view lines) override {
    stats_.lines_dropped += backlog_.push(lines);
    deliver(/*force=*/false);
  }
  void flush() override { deliver(/*force=*/true); }
  SinkStats stats() const override { return stats_; }
  size_t pending_bytes() const override { return backlog_.size(); }
  std::string take_unsent() override { return backlog_.take_unsent(); }

 protected:
  // Sends what the deadline allows; force: try now even within reconnect_interval of a
  // failure (the flush at exit).
  virtual void deliver(bool force) = 0;

  const std::string url_;
  const std::string host_;
  const uint16_t port_;
  const SinkOptions opts_;
  Backlog backlog_;
  LinkLog link_;
  UniqueFd fd_;
  Clock::time_point next_attempt_{};
  SinkStats stats_;
};

// Factories; make_sink has validated the URL.
std::unique_ptr<Sink> make_stdout_sink();
std::unique_ptr<Sink> make_tcp_sink(std::string url, std::string host, uint16_t port,
                                    const SinkOptions& opts);
std::unique_ptr<Sink> make_udp_sink(std::string url, std::string host, uint16_t port,
                                    const SinkOptions& opts);

// Which InfluxDB write API an http(s) output's path names.
enum class WriteApi {
  kV1,  // /write?db=NAME: InfluxDB 1.x, and 2.x's compatibility API
  kV2,  // /api/v2/write?org=O&bucket=B: InfluxDB 2.x, 3.x (and Cloud)
};
struct HttpTarget {
  std::string url;          // as configured: named in logs, hashed for the spool
  std::string request_url;  // what is POSTed to (v2: precision=ns added when absent)
  WriteApi api = WriteApi::kV1;
};
Result<std::unique_ptr<Sink>> make_http_sink(HttpTarget target, const SinkOptions& opts);

}  // namespace vmscope::sink_detail
