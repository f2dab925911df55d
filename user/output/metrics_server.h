// The Prometheus endpoint (`--listen ADDR:PORT`): GET /metrics, served by libmicrohttpd
// from its own thread. A scrape never waits for a tick and a tick never waits for a
// scrape: the tick publishes an immutable snapshot (one pointer swap under a mutex held
// for nothing else), and a scrape renders the last one it finds, in the format its Accept
// header asks for, gzip-compressed when it accepts that. Nothing listens unless asked.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"
#include "output/output_tags.h"
#include "output/prometheus_metrics.h"

struct MHD_Daemon;

namespace vmscope {

struct ListenAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// "127.0.0.1:9847", "[::1]:9847", "0.0.0.0:9847", ":9847" (every address); the port is
// required, 0 picks a free one. Errors say what was expected.
Result<ListenAddress> parse_listen_address(std::string_view text);

class MetricsServer {
 public:
  // Binds and listens on `listen` at once, so a port in use is an error here.
  static Result<std::unique_ptr<MetricsServer>> start(std::string_view listen);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The address it listens on, as ADDR:PORT (the port chosen when 0 was asked for).
  const std::string& address() const { return address_; }

  // The tick: the next scrape shows this sample. Copies it (names included), records the
  // tick's duration (self.tick_ns) in the histogram, and swaps the pointer.
  void publish(const TickSample& sample, const SelfMetrics& self, const TaskCounterSupport& kept);

  // The labels every series carries from the next publish on (host, the global tags):
  // encoded here, once per configuration.
  void set_tags(const OutputTags& tags);

  // The HTTP thread's side, also for the tests: the snapshot a scrape starting now renders.
  std::shared_ptr<const MetricsSnapshot> latest() const;

  struct Key {
   private:
    Key() = default;
    friend class MetricsServer;
  };
  explicit MetricsServer(Key) {}

 private:
  struct DaemonStop {
    void operator()(MHD_Daemon* d) const;
  };
  mutable std::mutex mu_;  // guards latest_ only: held for a pointer copy or swap
  std::shared_ptr<const MetricsSnapshot> latest_;
  TickHistogram ticks_;       // the tick thread's
  StartTimes start_times_;    // the tick thread's
  std::string const_labels_;  // the tick thread's
  std::string address_;
  std::unique_ptr<MHD_Daemon, DaemonStop> daemon_;
};

}  // namespace vmscope
