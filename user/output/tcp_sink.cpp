// TCP sink: a stream of lines to Telegraf's socket_listener (or anything reading lines).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/unique_fd.h"
#include "output/sinks_impl.h"

namespace vmscope::sink_detail {
namespace {

class TcpSink final : public SocketSink {
 public:
  using SocketSink::SocketSink;

 private:
  // Sends as much of the backlog as the deadline allows. Reconnects no sooner than
  // reconnect_interval after a failure unless forced (flush at exit).
  void deliver(bool force_connect) override {
    if (backlog_.empty()) return;
    const auto now = Clock::now();
    const auto deadline = now + opts_.timeout;
    if (fd_.valid()) check_peer();  // a peer close counts as an error: retry after the interval
    if (!fd_.valid()) {
      if (!force_connect && now < next_attempt_) return;
      if (!connect(deadline)) {
        next_attempt_ = now + opts_.reconnect_interval;
        return;
      }
    }
    while (!backlog_.empty()) {
      const std::string_view data = backlog_.pending();
      const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        stats_.bytes_written += static_cast<uint64_t>(n);
        stats_.lines_written += backlog_.consume(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // The peer is slow: wait for room, but the rest stays queued once the deadline passes.
        if (Clock::now() >= deadline || wait_fd(fd_.get(), POLLOUT, deadline) == 0) return;
        continue;
      }
      disconnect(n < 0 ? std::strerror(errno) : "send returned 0");
      return;
    }
  }

  // Telegraf never sends anything back, so a readable socket means EOF or an error. Catching it
  // before sending keeps the next batch from vanishing into a dead connection.
  void check_peer() {
    char c;
    const ssize_t n = ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
      disconnect("closed by peer");
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      disconnect(std::strerror(errno));
    }
  }

  bool connect(Clock::time_point deadline) {
    auto addrs = resolve(host_, port_, SOCK_STREAM);
    if (!addrs) {
      link_.down("disconnected", addrs.error().message);
      return false;
    }
    std::string why = "no address";
    for (const addrinfo* ai = addrs->get(); ai != nullptr; ai = ai->ai_next) {
      UniqueFd fd(
          ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
      if (!fd.valid()) {
        why = std::strerror(errno);
        continue;
      }
      if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
          why = std::strerror(errno);
          continue;
        }
        if (wait_fd(fd.get(), POLLOUT, deadline) == 0) {
          why = "connect timed out";
          break;  // the deadline is shared by all addresses
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err != 0) {
          why = std::strerror(err);
          continue;
        }
      }
      fd_ = std::move(fd);
      link_.up();
      return true;
    }
    link_.down("disconnected", why);
    return false;
  }

  void disconnect(std::string_view why) {
    fd_.reset();
    next_attempt_ = Clock::now() + opts_.reconnect_interval;
    link_.down("disconnected", why);
    // Half a line must not start the next connection's stream.
    stats_.lines_dropped += backlog_.drop_partial();
  }
};

}  // namespace

std::unique_ptr<Sink> make_tcp_sink(std::string url, std::string host, uint16_t port,
                                    const SinkOptions& opts) {
  return std::make_unique<TcpSink>(std::move(url), std::move(host), port, opts);
}

}  // namespace vmscope::sink_detail
