// A loopback HTTP(S) receiver inside a test namespace that records what an InfluxDB write
// endpoint would get: Debian has no InfluxDB 2 server, so the v2 API is checked against
// this. libmicrohttpd (the agent's own /metrics server library, built with GnuTLS) serves
// plain HTTP, or HTTPS with a certificate of the test's throwaway CA (TestCa).
#pragma once

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "test_env.h"

namespace vmscope::test {

// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl command
// in `dir` (nothing downloaded; scripts/install-deps.sh --tests installs openssl).
struct TestCa {
  std::string ca_file, cert_pem, key_pem;
  TestCa(const std::string& dir, const std::string& name) {
    const std::string p = dir + "/" + name;
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    must("openssl req -x509 " + ec + " -keyout " + p + "-ca.key -out " + p + "-ca.pem -days 2" +
         " -subj /CN=vmscope-test-" + name + " 2>/dev/null");
    must("openssl req " + ec + " -keyout " + p + "-server.key -out " + p +
         "-server.csr -subj /CN=127.0.0.1 2>/dev/null");
    must("echo subjectAltName=IP:127.0.0.1 > " + p + "-ext.cnf");
    must("openssl x509 -req -in " + p + "-server.csr -CA " + p + "-ca.pem -CAkey " + p +
         "-ca.key -CAcreateserial -days 2 -extfile " + p + "-ext.cnf -out " + p +
         "-server.pem 2>/dev/null");
    ca_file = p + "-ca.pem";
    cert_pem = read(p + "-server.pem");
    key_pem = read(p + "-server.key");
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

// A TCP socket listening on 127.0.0.1 (an ephemeral port, into `port`) inside ns; -1 on
// failure.
inline int listen_loopback(const Netns& ns, uint16_t& port) {
  const int fd = ns.socket(AF_INET, SOCK_STREAM);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

struct ReceivedRequest {
  std::string method, path;
  std::map<std::string, std::string> args;     // the query, percent-decoded
  std::map<std::string, std::string> headers;  // names as sent
  std::string body;                            // as sent (still gzip-compressed)
};

class HttpReceiver {
 public:
  // Listens on 127.0.0.1 (an ephemeral port) inside ns; answers every POST with `status`
  // (401 with InfluxDB's JSON error body). tls: serve HTTPS with that CA's certificate.
  HttpReceiver(const Netns& ns, unsigned status, const TestCa* tls = nullptr) : status_(status) {
    const int fd = listen_loopback(ns, port_);
    if (fd < 0) throw std::runtime_error("receiver: cannot listen in " + ns.name());
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;  // no error log: the TLS failures are meant
    if (tls) {
      flags |= MHD_USE_TLS;
      cert_ = tls->cert_pem;
      key_ = tls->key_pem;
    }
    // The daemon owns fd from here. MHD_OPTION_HTTPS_MEM_* with empty strings would fail, so
    // they are passed only for TLS (the option list ends at the first MHD_OPTION_END).
    daemon_.reset(tls ? MHD_start_daemon(flags, 0, nullptr, nullptr, &handle, this,
                                         MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_HTTPS_MEM_KEY,
                                         key_.c_str(), MHD_OPTION_HTTPS_MEM_CERT, cert_.c_str(),
                                         MHD_OPTION_END)
                      : MHD_start_daemon(flags, 0, nullptr, nullptr, &handle, this,
                                         MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END));
    if (!daemon_) throw std::runtime_error("receiver: MHD_start_daemon failed");
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& scheme, const std::string& target) const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + target;
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mu_);
    return done_;
  }

 private:
  struct Stop {
    void operator()(MHD_Daemon* d) const { MHD_stop_daemon(d); }
  };

  static MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
    (*static_cast<std::map<std::string, std::string>*>(cls))[key] = value ? value : "";
    return MHD_YES;
  }

  // One request arrives in several calls: headers first (*req == nullptr), then the body in
  // pieces, then a last call with no data, which answers.
  static MHD_Result handle(void* cls, MHD_Connection* c, const char* url, const char* method,
                           const char*, const char* data, size_t* size, void** req) {
    auto* self = static_cast<HttpReceiver*>(cls);
    std::lock_guard lock(self->mu_);
    if (*req == nullptr) {
      ReceivedRequest r{method, url, {}, {}, {}};
      MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, &collect, &r.args);
      MHD_get_connection_values(c, MHD_HEADER_KIND, &collect, &r.headers);
      self->open_[c] = std::move(r);
      *req = c;
      return MHD_YES;
    }
    ReceivedRequest& r = self->open_[c];
    if (*size != 0) {
      r.body.append(data, *size);
      *size = 0;
      return MHD_YES;
    }
    self->done_.push_back(std::move(r));
    self->open_.erase(c);
    const std::string body =
        self->status_ == 401 ? R"({"code":"unauthorized","message":"unauthorized access"})" : "";
    MHD_Response* resp = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    const MHD_Result rc = MHD_queue_response(c, self->status_, resp);
    MHD_destroy_response(resp);
    return rc;
  }

  unsigned status_;
  uint16_t port_ = 0;
  std::string cert_, key_;
  mutable std::mutex mu_;
  std::map<MHD_Connection*, ReceivedRequest> open_;
  std::vector<ReceivedRequest> done_;
  std::unique_ptr<MHD_Daemon, Stop> daemon_;  // last: stopped before the state it uses goes
};

}  // namespace vmscope::test
