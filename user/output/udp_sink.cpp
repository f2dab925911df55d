// UDP sink: datagrams of whole lines to Telegraf's socket_listener (udp).
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/unique_fd.h"
#include "output/sinks_impl.h"

namespace vmscope::sink_detail {
namespace {

// Fits a typical 1500-byte MTU after IP and UDP headers, so datagrams are not fragmented.
constexpr size_t kMaxDatagram = 1400;

// Length of the next datagram: whole lines up to kMaxDatagram, or one longer line alone.
size_t datagram_len(std::string_view pending) {
  size_t len = pending.find('\n') + 1;  // the backlog holds complete lines only
  while (len < kMaxDatagram) {
    const size_t nl = pending.find('\n', len);
    if (nl == std::string_view::npos || nl + 1 > kMaxDatagram) break;
    len = nl + 1;
  }
  return len;
}

class UdpSink final : public SocketSink {
 public:
  using SocketSink::SocketSink;

 private:
  void deliver(bool force_open) override {
    if (backlog_.empty()) return;
    const auto now = Clock::now();
    const auto deadline = now + opts_.timeout;
    if (!fd_.valid()) {
      if (!force_open && now < next_attempt_) return;
      if (!open()) {
        next_attempt_ = now + opts_.reconnect_interval;
        return;
      }
    }
    while (!backlog_.empty()) {
      const std::string_view data = backlog_.pending();
      const size_t len = datagram_len(data);
      // Unconnected sendto: ICMP errors from an absent listener are not reported back, as
      // with a fire-and-forget collector they should not be.
      const ssize_t n = ::sendto(fd_.get(), data.data(), len, MSG_NOSIGNAL | MSG_DONTWAIT,
                                 reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
      if (n >= 0) {
        stats_.bytes_written += len;
        stats_.lines_written += backlog_.consume(len);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        if (Clock::now() >= deadline || wait_fd(fd_.get(), POLLOUT, deadline) == 0) return;
        continue;
      }
      if (errno == EMSGSIZE) {  // one line longer than a datagram can be
        if (!warned_too_long_) {
          spdlog::warn("output {}: dropping lines longer than a UDP datagram ({} bytes)", url_,
                       len);
          warned_too_long_ = true;
        }
        stats_.lines_dropped += backlog_.drop(len);
        continue;
      }
      link_.down("disconnected", std::strerror(errno));
      fd_.reset();
      next_attempt_ = Clock::now() + opts_.reconnect_interval;
      return;
    }
  }

  // Resolves the destination and opens a socket of its family.
  bool open() {
    auto addrs = resolve(host_, port_, SOCK_DGRAM);
    if (!addrs) {
      link_.down("disconnected", addrs.error().message);
      return false;
    }
    const addrinfo* ai = addrs->get();
    UniqueFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      link_.down("disconnected", std::strerror(errno));
      return false;
    }
    std::memcpy(&addr_, ai->ai_addr, ai->ai_addrlen);
    addr_len_ = ai->ai_addrlen;
    fd_ = std::move(fd);
    link_.up();
    return true;
  }

  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  bool warned_too_long_ = false;
};

}  // namespace

std::unique_ptr<Sink> make_udp_sink(std::string url, std::string host, uint16_t port,
                                    const SinkOptions& opts) {
  return std::make_unique<UdpSink>(std::move(url), std::move(host), port, opts);
}

}  // namespace vmscope::sink_detail
