// Sink: where encoded line protocol goes (stdout, Telegraf over TCP/UDP, InfluxDB over HTTP).
// A sink is used from one thread; it never throws and keeps a bounded backlog while the
// destination is down.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace vmscope {

struct SinkOptions {
  std::string http_username, http_password;  // basic auth for http(s) sinks
  // `Authorization: Token` for /api/v2/write, and for /write without a username (InfluxDB
  // 2.x's 1.x-compatible API). Never logged.
  std::string http_token;
  std::string tls_ca_file;  // https: CA bundle (PEM) that signs the server; empty: the system's
  // Per-sink buffer while the destination is down; oldest whole lines dropped beyond it.
  size_t max_backlog_bytes = 8 << 20;
  std::chrono::milliseconds timeout{2000};  // connect/write timeout per attempt
  // Like albatross-influx. Milliseconds (not seconds) so tests can use short intervals;
  // std::chrono::seconds values still assign to it.
  std::chrono::milliseconds reconnect_interval{std::chrono::seconds(5)};

  bool operator==(const SinkOptions&) const = default;  // a reload renews sinks on a change
};

struct SinkStats {
  uint64_t lines_written = 0, lines_dropped = 0, bytes_written = 0;
  // The output's on-disk spool (output/spool.h): now, and dropped from it since start
  // (those lines are in lines_dropped too).
  uint64_t spool_bytes = 0, spool_batches = 0, spool_dropped_batches = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual const std::string& url() const = 0;
  // Queues a batch of complete lines (each ending in '\n') and tries to deliver everything
  // queued. Never throws; never blocks longer than about options.timeout. Undelivered lines
  // stay queued (bounded).
  virtual void write(std::string_view lines) = 0;
  // Last attempt to deliver the backlog before exit (bounded by timeout).
  virtual void flush() = 0;
  virtual SinkStats stats() const = 0;
  // Bytes queued and not yet delivered (the output writer spools instead of queueing more).
  virtual size_t pending_bytes() const { return 0; }
  // Takes back the queued whole lines not yet started, for the spool; a line partly written
  // to a stream stays (that stream must finish it).
  virtual std::string take_unsent() { return {}; }
};

// "-" stdout;
// "tcp://HOST[:PORT]" (Telegraf socket_listener; default port 8094);
// "udp://HOST[:PORT]" (default 8094; one datagram per group of whole lines, at most 1400 bytes
//   each unless a single line is longer);
// "http://HOST[:PORT]/write?db=NAME[&rp=RP][&precision=ns]" and https (InfluxDB 1.x /write via
//   libcurl, POST with Content-Encoding: gzip, expects 204; db is required);
// "http://HOST[:PORT]/api/v2/write?bucket=B[&org=O|&orgID=ID][&precision=ns]" and https
//   (InfluxDB 2.x, 3.x and other stores of the v2 write API; bucket is required, org is for
//   2.x; precision=ns is added when absent). Either path may follow a reverse proxy's prefix.
// HOST is a name, an IPv4 address or a bracketed IPv6 address; names are resolved when
// connecting, not here, so a sink can be made while DNS or the destination is down.
// Bad URL -> Error with one-line message like: output "tcp://": missing host
Result<std::unique_ptr<Sink>> make_sink(std::string_view url, const SinkOptions& opts);

}  // namespace vmscope
