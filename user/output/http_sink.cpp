// HTTP sink: POST batches of lines to InfluxDB's /write (1.x) or /api/v2/write (2.x, 3.x)
// with libcurl.
#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>

#include "output/compress.h"
#include "output/sinks_impl.h"

namespace vmscope::sink_detail {
namespace {

// Keeps requests well under InfluxDB's max-body-size (25 MB by default) and its
// recommended 5000-line batches.
constexpr size_t kMaxBody = 1 << 20;
constexpr size_t kMaxResponse = 4096;  // enough of an error body to log

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

CURLcode global_init() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return rc;
}

// Whole lines up to kMaxBody, or one longer line alone.
size_t batch_len(std::string_view pending) {
  if (pending.size() <= kMaxBody) return pending.size();
  const size_t nl = pending.rfind('\n', kMaxBody - 1);
  return nl != std::string_view::npos ? nl + 1 : pending.find('\n') + 1;
}

// One line of a server reply for a log message; a server that echoes the token (none is
// known to) still does not get it into the log.
std::string summarize(std::string_view body, std::string_view secret) {
  std::string s(body.substr(0, 300));
  if (!secret.empty())
    for (size_t p = s.find(secret); p != std::string::npos; p = s.find(secret, p + 3))
      s.replace(p, secret.size(), "***");
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s.empty() ? "(empty body)" : s;
}

size_t collect_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* out = static_cast<std::string*>(user);
  const size_t n = size * nmemb;
  out->append(data, std::min(n, kMaxResponse - std::min(out->size(), kMaxResponse)));
  return n;
}

class HttpSink final : public Sink {
 public:
  HttpSink(HttpTarget target, const SinkOptions& opts, CurlPtr curl, SlistPtr headers)
      : url_(std::move(target.url)),
        request_url_(std::move(target.request_url)),
        opts_(opts),
        backlog_(opts.max_backlog_bytes),
        link_(url_),
        curl_(std::move(curl)),
        headers_(std::move(headers)) {
    CURL* c = curl_.get();
    curl_easy_setopt(c, CURLOPT_URL, request_url_.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers_.get());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vmscope");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &response_);
    if (target.api == WriteApi::kV1 && !opts_.http_username.empty()) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(c, CURLOPT_USERNAME, opts_.http_username.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, opts_.http_password.c_str());
    }
    if (!opts_.tls_ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts_.tls_ca_file.c_str());
  }

  const std::string& url() const override { return url_; }

  void write(std::string_view lines) override {
    stats_.lines_dropped += backlog_.push(lines);
    deliver();
  }

  void flush() override { deliver(); }

  SinkStats stats() const override { return stats_; }
  size_t pending_bytes() const override { return backlog_.size(); }
  std::string take_unsent() override { return backlog_.take_unsent(); }

 private:
  // POSTs batches until the backlog is empty, the deadline passes or the server fails; a failed
  // batch stays queued for the next write.
  void deliver() {
    const auto deadline = Clock::now() + opts_.timeout;
    while (!backlog_.empty()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return;
      const std::string_view body = backlog_.pending().substr(0, batch_len(backlog_.pending()));
      // gzip: ~10x fewer bytes on the wire, and a spool replay after an outage goes ~10x
      // faster over a slow link. Only memory exhaustion makes it fail.
      gzipped_.clear();
      if (Status st = gzip_into(body, gzipped_); !st) {
        spdlog::warn("output {}: {}: dropping a batch", url_, st.error().message);
        stats_.lines_dropped += backlog_.drop(body.size());
        continue;
      }
      CURL* c = curl_.get();
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, gzipped_.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(gzipped_.size()));
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
      curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(left.count()));
      response_.clear();
      error_[0] = '\0';
      const CURLcode rc = curl_easy_perform(c);
      if (rc != CURLE_OK) {
        link_.down("disconnected", error_[0] != '\0' ? error_ : curl_easy_strerror(rc));
        return;
      }
      long code = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
      if (code >= 200 && code < 300) {
        link_.up();
        rejected_ = false;
        stats_.bytes_written += body.size();
        stats_.lines_written += backlog_.consume(body.size());
        continue;
      }
      if (code == 400) {
        // InfluxDB parsed the batch and refuses (some of) it; it will refuse it again, and any
        // good points in it were already written.
        link_.up();
        if (!rejected_) {
          spdlog::warn("output {}: InfluxDB rejected a batch (HTTP 400): {}", url_,
                       summarize(response_, opts_.http_token));
          rejected_ = true;
        }
        stats_.lines_dropped += backlog_.drop(body.size());
        continue;
      }
      // 401/403 keep the batch too: once the credentials are fixed, the spool delivers it.
      link_.down(code == 401 || code == 403
                     ? fmt::format("HTTP {} (check the credentials: http.token, "
                                   "VMSCOPE_INFLUX_TOKEN or http.username/password)",
                                   code)
                     : fmt::format("HTTP {}", code),
                 summarize(response_, opts_.http_token));
      return;
    }
  }

  const std::string url_;
  const std::string request_url_;
  const SinkOptions opts_;
  Backlog backlog_;
  LinkLog link_;
  CurlPtr curl_;
  SlistPtr headers_;
  std::string response_;
  std::string gzipped_;  // the body being posted
  char error_[CURL_ERROR_SIZE] = {};
  bool rejected_ = false;  // a 400 was logged since the last success
  SinkStats stats_;
};

}  // namespace

namespace {

// libcurl's own URL parser, so that what it would refuse at the first POST (a space in the
// bucket's name, say) is refused at start instead.
Status check_url(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
  if (!u) return Error::msg("curl_url failed");
  if (const CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0); rc != CURLUE_OK)
    return Error::msg(fmt::format("libcurl refuses the URL: {}", curl_url_strerror(rc)));
  return {};
}

}  // namespace

Result<std::unique_ptr<Sink>> make_http_sink(HttpTarget target, const SinkOptions& opts) {
  if (const CURLcode rc = global_init(); rc != CURLE_OK) {
    return Error::msg(fmt::format("curl_global_init: {}", curl_easy_strerror(rc)));
  }
  if (Status st = check_url(target.request_url); !st) return st.error();
  // A missing CA bundle would fail every handshake; say so at start instead.
  if (target.request_url.starts_with("https:") && !opts.tls_ca_file.empty() &&
      ::access(opts.tls_ca_file.c_str(), R_OK) != 0)
    return Error::from_errno(fmt::format("tls_ca_file {}", opts.tls_ca_file), errno);
  CurlPtr curl(curl_easy_init());
  if (!curl) return Error::msg("curl_easy_init failed");
  // The token goes in a header of our own, as InfluxDB wants "Token", not "Bearer"; basic
  // auth wins on /write when a username is set.
  const bool token =
      !opts.http_token.empty() && (target.api == WriteApi::kV2 || opts.http_username.empty());
  const std::string authorization = token ? "Authorization: Token " + opts.http_token : "";
  SlistPtr headers;
  // curl_slist_append returns the new head, or nullptr leaving the old list intact.
  for (const char* h : {"Content-Type: text/plain; charset=utf-8", "Content-Encoding: gzip",
                        "Expect:",  // no 100-continue round trip before each body
                        authorization.c_str()}) {
    if (*h == '\0') continue;
    curl_slist* next = curl_slist_append(headers.get(), h);
    if (next == nullptr) return Error::msg("curl_slist_append failed");
    if (!headers) headers.reset(next);  // later appends keep the same head
  }
  return std::unique_ptr<Sink>(
      std::make_unique<HttpSink>(std::move(target), opts, std::move(curl), std::move(headers)));
}

}  // namespace vmscope::sink_detail
