#include "output/sinks_impl.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <string>

#include "output/sink.h"

namespace vmscope {
namespace sink_detail {

size_t count_lines(std::string_view s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

uint64_t Backlog::push(std::string_view lines) {
  if (head_ > 0) {  // compact before growing
    buf_.erase(0, head_);
    head_ = 0;
  }
  buf_.append(lines);
  if (!buf_.empty() && buf_.back() != '\n') buf_.push_back('\n');
  if (buf_.size() <= max_bytes_) return 0;

  // A partly written line must be finished on its stream, so dropping starts after it.
  size_t start = 0;
  if (partial_) {
    const size_t nl = buf_.find('\n');
    start = nl == std::string::npos ? buf_.size() : nl + 1;
  }
  const size_t excess = buf_.size() - max_bytes_;
  size_t cut = buf_.size();
  if (start + excess - 1 < buf_.size()) {
    const size_t nl = buf_.find('\n', start + excess - 1);
    if (nl != std::string::npos) cut = nl + 1;
  }
  if (cut <= start) return 0;
  const uint64_t dropped = count_lines(std::string_view(buf_).substr(start, cut - start));
  buf_.erase(start, cut - start);
  return dropped;
}

uint64_t Backlog::consume(size_t n) {
  n = std::min(n, buf_.size() - head_);
  if (n == 0) return 0;
  const uint64_t lines = count_lines(std::string_view(buf_).substr(head_, n));
  head_ += n;
  partial_ = buf_[head_ - 1] != '\n';
  if (head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  }
  return lines;
}

uint64_t Backlog::drop(size_t n) {
  const uint64_t lines = consume(n);
  partial_ = false;
  return lines;
}

std::string Backlog::take_unsent() {
  size_t start = head_;
  if (partial_) {
    const size_t nl = buf_.find('\n', head_);
    start = nl == std::string::npos ? buf_.size() : nl + 1;
  }
  std::string out = buf_.substr(start);
  buf_.erase(start);
  if (head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  }
  return out;
}

uint64_t Backlog::drop_partial() {
  if (!partial_) return 0;
  const size_t nl = buf_.find('\n', head_);
  consume(nl == std::string::npos ? buf_.size() - head_ : nl + 1 - head_);
  partial_ = false;
  return 1;
}

void LinkLog::down(std::string_view what, std::string_view why) {
  if (state_ == State::kDown) return;
  state_ = State::kDown;
  spdlog::warn("output {}: {}: {}", url_, what, why);
}

void LinkLog::up() {
  if (state_ == State::kUp) return;
  state_ = State::kUp;
  spdlog::info("output {}: connected", url_);
}

Result<AddrInfoPtr> resolve(const std::string& host, uint16_t port, int socktype) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV;  // no AI_ADDRCONFIG: it hides "localhost" on loopback-only hosts
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc == EAI_SYSTEM) return Error::from_errno(fmt::format("resolve {}", host), errno);
  if (rc != 0) return Error::msg(fmt::format("resolve {}: {}", host, gai_strerror(rc)));
  return AddrInfoPtr(res);
}

int wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (rc > 0) return p.revents;
    if (rc == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

}  // namespace sink_detail

namespace {

struct HostPort {
  std::string host;  // without IPv6 brackets
  uint16_t port = 0;
};

// Splits "HOST[:PORT]" / "[V6]:PORT"; returns the problem as a short phrase on failure.
Result<HostPort> parse_authority(std::string_view auth, uint16_t default_port) {
  if (auth.find('@') != std::string_view::npos) {
    // Kept out of URLs because URLs end up in logs.
    return Error::msg(
        "credentials in the URL are not supported; use the HTTP username/password options");
  }
  HostPort hp{std::string(), default_port};
  std::string_view port_str;
  bool has_port = false;
  if (!auth.empty() && auth.front() == '[') {
    const size_t close = auth.find(']');
    if (close == std::string_view::npos) return Error::msg("missing ] after IPv6 address");
    hp.host = auth.substr(1, close - 1);
    const std::string_view rest = auth.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Error::msg(fmt::format("bad host \"{}\"", auth));
      port_str = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = auth.find(':');
    if (colon != std::string_view::npos && auth.find(':', colon + 1) != std::string_view::npos) {
      return Error::msg("IPv6 address must be in brackets, like [::1]");
    }
    hp.host = auth.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_str = auth.substr(colon + 1);
      has_port = true;
    }
  }
  if (hp.host.empty()) return Error::msg("missing host");
  if (has_port) {
    unsigned port = 0;
    const auto r = std::from_chars(port_str.data(), port_str.data() + port_str.size(), port);
    if (port_str.empty() || r.ec != std::errc() || r.ptr != port_str.data() + port_str.size() ||
        port == 0 || port > 65535) {
      return Error::msg(fmt::format("bad port \"{}\"", port_str));
    }
    hp.port = static_cast<uint16_t>(port);
  }
  return hp;
}

constexpr std::string_view kWantV1 = "/write?db=NAME";
constexpr std::string_view kWantV2 = "/api/v2/write?org=ORG&bucket=BUCKET";

// Checks an InfluxDB write target, /write?db=NAME[&rp=RP][&precision=ns] (1.x) or
// /api/v2/write?bucket=B[&org=O][&precision=ns] (2.x/3.x), and says which API it is.
Result<sink_detail::WriteApi> check_write_target(std::string_view target) {
  using sink_detail::WriteApi;
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  // A reverse proxy may put InfluxDB under a prefix, so only the path's end is checked.
  WriteApi api = WriteApi::kV1;
  if (path == "/api/v2/write" || path.ends_with("/api/v2/write"))
    api = WriteApi::kV2;
  else if (path != "/write" && !path.ends_with("/write"))
    return Error::msg(fmt::format("path \"{}\" is not an InfluxDB write endpoint (want {} or {})",
                                  path, kWantV1, kWantV2));
  const std::string_view name_key = api == WriteApi::kV1 ? "db" : "bucket";
  bool has_name = false;
  size_t pos = 0;
  while (pos <= query.size()) {
    const size_t amp = std::min(query.find('&', pos), query.size());
    const std::string_view param = query.substr(pos, amp - pos);
    pos = amp + 1;
    const size_t eq = param.find('=');
    const std::string_view key = param.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : param.substr(eq + 1);
    if (key == name_key) has_name = !value.empty();
    // Timestamps are always nanoseconds; another precision would misplace every point.
    if (key == "precision" && value != "ns" && (api == WriteApi::kV2 || value != "n")) {
      return Error::msg(fmt::format("precision \"{}\" not supported (timestamps are ns)", value));
    }
  }
  if (!has_name) {
    return Error::msg(fmt::format("missing {}= in the query (want {})", name_key,
                                  api == WriteApi::kV1 ? kWantV1 : kWantV2));
  }
  return api;
}

// The v2 API's default precision is ns in InfluxDB 2.x, but not every store of that API
// agrees (InfluxDB 3 can guess it from the magnitude): vmscope's ns are said explicitly.
std::string v2_request_url(std::string_view url) {
  const size_t q = url.find('?');
  if (q != std::string_view::npos) {
    const std::string_view query = url.substr(q);  // "?a=b&c=d"
    for (size_t p = query.find("precision="); p != std::string_view::npos;
         p = query.find("precision=", p + 1))
      if (query[p - 1] == '?' || query[p - 1] == '&') return std::string(url);
  }
  return fmt::format("{}{}precision=ns", url,
                     q == std::string_view::npos ? "?" : (url.back() == '&' ? "" : "&"));
}

// "http://user:pw@h/..." -> "http://***@h/..." so a rejected URL does not leak a password.
std::string redact_userinfo(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::string(url);
  const size_t auth_end = std::min(url.find_first_of("/?", sep + 3), url.size());
  const size_t at = url.rfind('@', auth_end);
  if (at == std::string_view::npos || at < sep + 3) return std::string(url);
  return fmt::format("{}***{}", url.substr(0, sep + 3), url.substr(at));
}

constexpr uint16_t kTelegrafPort = 8094;  // Telegraf socket_listener's usual port

}  // namespace

Result<std::unique_ptr<Sink>> make_sink(std::string_view url, const SinkOptions& opts) {
  const auto fail = [&](std::string_view why) {
    return Error::msg(fmt::format("output \"{}\": {}", redact_userinfo(url), why));
  };
  if (url == "-") return sink_detail::make_stdout_sink();
  if (url.empty()) return fail("empty URL");
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return fail(
        fmt::format("want -, tcp://HOST[:PORT], udp://HOST[:PORT], http(s)://HOST[:PORT]{} or "
                    "http(s)://HOST[:PORT]{}",
                    kWantV1, kWantV2));
  }
  const std::string_view scheme = url.substr(0, sep);
  const std::string_view rest = url.substr(sep + 3);
  const size_t auth_end = std::min(rest.find_first_of("/?"), rest.size());
  const std::string_view target = rest.substr(auth_end);

  if (scheme == "tcp" || scheme == "udp") {
    auto hp = parse_authority(rest.substr(0, auth_end), kTelegrafPort);
    if (!hp) return fail(hp.error().message);
    if (!target.empty() && target != "/") {
      return fail(
          fmt::format("unexpected \"{}\" after the port (want {}://HOST[:PORT])", target, scheme));
    }
    if (scheme == "tcp") {
      return sink_detail::make_tcp_sink(std::string(url), std::move(hp->host), hp->port, opts);
    }
    return sink_detail::make_udp_sink(std::string(url), std::move(hp->host), hp->port, opts);
  }
  if (scheme == "http" || scheme == "https") {
    auto hp = parse_authority(rest.substr(0, auth_end), 0);
    if (!hp) return fail(hp.error().message);
    auto api = check_write_target(target);
    if (!api) return fail(api.error().message);
    sink_detail::HttpTarget http{std::string(url), std::string(url), *api};
    if (*api == sink_detail::WriteApi::kV2) http.request_url = v2_request_url(url);
    auto sink = sink_detail::make_http_sink(std::move(http), opts);
    if (!sink) return fail(sink.error().message);
    return sink;
  }
  return fail(fmt::format("unsupported scheme \"{}\" (want tcp, udp, http or https)", scheme));
}

}  // namespace vmscope
