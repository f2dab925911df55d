#include "output/metrics_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <microhttpd.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstring>

#include "common/unique_fd.h"
#include "output/compress.h"

namespace vmscope {

Result<ListenAddress> parse_listen_address(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Error::msg(fmt::format(
        "listen address \"{}\": {} (expected ADDR:PORT, e.g. 127.0.0.1:9847 or [::1]:9847)", text,
        why));
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos)
    return bad("the port must be a number");
  const unsigned long port = std::stoul(std::string(port_text));
  if (port > 65535) return bad("the port must be at most 65535");
  ListenAddress a;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1)
      return bad("not an IPv6 address in brackets");
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  auto* in4 = reinterpret_cast<sockaddr_in*>(&a.addr);
  in4->sin_family = AF_INET;
  in4->sin_port = htons(static_cast<uint16_t>(port));
  if (host.empty())
    in4->sin_addr.s_addr = htonl(INADDR_ANY);
  else if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1)
    return bad("not an IPv4 address (IPv6 goes in brackets)");
  a.len = sizeof(sockaddr_in);
  return a;
}

namespace {

std::string format_address(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return fmt::format("[{}]:{}", buf, ntohs(in6->sin6_port));
  }
  const auto* in4 = reinterpret_cast<const sockaddr_in*>(&a);
  inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof buf);
  return fmt::format("{}:{}", buf, ntohs(in4->sin_port));
}

// libmicrohttpd's messages are about single connections (a client that hung up): debug.
void mhd_log(void*, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string_view msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  spdlog::debug("metrics endpoint: {}", msg);
}

MHD_Result respond(MHD_Connection* c, unsigned status, std::string_view type,
                   const std::string& body, bool gzip = false) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, std::string(type).c_str());
  if (gzip) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  const MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

MHD_Result handle(void* cls, MHD_Connection* c, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload_data*/,
                  size_t* /*upload_data_size*/, void** /*con_cls*/) {
  const auto* server = static_cast<const MetricsServer*>(cls);
  if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, kTextPlain, "only GET and HEAD\n");
  const std::string_view path(url);
  if (path == "/")
    return respond(c, MHD_HTTP_OK, "text/html; charset=utf-8",
                   "<html><head><title>vmscope</title></head><body><h1>vmscope</h1>"
                   "<p><a href=\"/metrics\">/metrics</a></p></body></html>\n");
  if (path != "/metrics")
    return respond(c, MHD_HTTP_NOT_FOUND, kTextPlain, "not found: try /metrics\n");

  const char* accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
  const ExpositionFormat format = negotiate_format(accept ? accept : "");
  std::string text;
  render_metrics(*server->latest(), format, text);
  const char* encodings =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
  if (encodings && std::strstr(encodings, "gzip")) {
    std::string gz;
    if (gzip_into(text, gz)) return respond(c, MHD_HTTP_OK, content_type(format), gz, true);
  }
  return respond(c, MHD_HTTP_OK, content_type(format), text);
}

}  // namespace

void MetricsServer::DaemonStop::operator()(MHD_Daemon* d) const {
  MHD_stop_daemon(d);  // joins its thread, closes the listening socket
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(std::string_view listen) {
  auto where = parse_listen_address(listen);
  if (!where) return where.error();
  const std::string what = fmt::format("metrics endpoint (--listen {})", listen);
  UniqueFd fd(::socket(where->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Error::from_errno(what + ": socket", errno);
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&where->addr), where->len) < 0)
    return Error::from_errno(what + ": bind", errno);
  if (::listen(fd.get(), 64) < 0) return Error::from_errno(what + ": listen", errno);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);

  auto server = std::make_unique<MetricsServer>(Key{});
  server->address_ = format_address(bound);
  server->latest_ = retain_snapshot(TickSample{}, SelfMetrics{}, TaskCounterSupport{}, {});
  // The daemon owns the socket from here (MHD_stop_daemon closes it).
  const int listen_fd = fd.release();
  MHD_Daemon* d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, nullptr, nullptr,
      &handle, server.get(), MHD_OPTION_EXTERNAL_LOGGER, &mhd_log, nullptr,
      MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_LIMIT, 64u,
      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (!d) return Error::msg(what + ": libmicrohttpd could not start its server thread");
  server->daemon_.reset(d);
  return server;
}

MetricsServer::~MetricsServer() = default;

void MetricsServer::publish(const TickSample& sample, const SelfMetrics& self,
                            const TaskCounterSupport& kept) {
  ticks_.observe(static_cast<double>(self.tick_ns) / 1e9);
  std::shared_ptr<MetricsSnapshot> built = retain_snapshot(sample, self, kept, ticks_);
  start_times_.settle(*built);
  built->const_labels = const_labels_;
  std::shared_ptr<const MetricsSnapshot> next = std::move(built);
  std::lock_guard lock(mu_);
  latest_.swap(next);
  // `next` now holds the previous snapshot: freed after the lock is released (or by the
  // last scrape still rendering it).
}

void MetricsServer::set_tags(const OutputTags& tags) {
  const_labels_ = metrics_labels(tags);
}

std::shared_ptr<const MetricsSnapshot> MetricsServer::latest() const {
  std::lock_guard lock(mu_);
  return latest_;
}

}  // namespace vmscope
