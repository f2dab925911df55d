// A tiny authoritative DNS responder for the test guest (built static, packed into the
// initramfs): Debian's busybox has no DNS server, and the vm_service test needs real
// answers of each RCODE from inside a VM.
//
//   dns_responder [-f] [-p PORT] NAME IPV4 [IPV6]
//
// UDP on PORT (default 53), IPv6 and IPv4 on one dual-stack socket (IPv4 only if the
// kernel has no IPv6). Answers, by the (case-insensitive) query name:
//   NAME                  NOERROR, with an A record IPV4 for type A (AAAA IPV6 for AAAA
//                         when given); other types: NOERROR without answers
//   servfail.vmscope.test SERVFAIL
//   refused.vmscope.test  REFUSED
//   anything else         NXDOMAIN
// Queries with another opcode get NOTIMP (header only). Packets that are not a single
// well-formed question (responses, truncated or compressed names) are ignored, so the
// test can count answers exactly. Without -f it forks into the background once the
// port is bound: the caller (the guest /init) may rely on the port being open when it
// returns.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr uint16_t kTypeA = 1, kTypeAaaa = 28, kClassIn = 1;
constexpr uint8_t kNoError = 0, kServFail = 2, kNxDomain = 3, kNotImp = 4, kRefused = 5;
constexpr size_t kHeader = 12;

struct Config {
  std::string name;  // lower case, no trailing dot
  in_addr a{};
  std::optional<in6_addr> aaaa;
};

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// The question's name (lower case, dot-separated) and the offset just past it, or nullopt
// for anything malformed (compression pointers have no place in a question).
std::optional<std::pair<std::string, size_t>> parse_name(const uint8_t* msg, size_t len) {
  std::string name;
  size_t off = kHeader;
  for (;;) {
    if (off >= len) return std::nullopt;
    const uint8_t label = msg[off++];
    if (label == 0) break;
    if (label > 63 || off + label > len || name.size() + label + 1 > 255) return std::nullopt;
    if (!name.empty()) name += '.';
    for (size_t i = 0; i < label; ++i)
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(msg[off + i])));
    off += label;
  }
  return std::pair{name, off};
}

// The response to one datagram; empty when it is to be ignored.
std::vector<uint8_t> answer(const Config& cfg, const uint8_t* msg, size_t len) {
  std::vector<uint8_t> out;
  if (len < kHeader || (msg[2] & 0x80)) return out;  // too short, or a response
  const uint8_t opcode = (msg[2] >> 3) & 0x0f;
  const uint8_t rd = msg[2] & 0x01;
  auto header = [&](uint8_t rcode, uint16_t qd, uint16_t an) {
    out.assign(msg, msg + 2);                                             // id
    out.push_back(static_cast<uint8_t>(0x80 | opcode << 3 | 0x04 | rd));  // QR, AA
    out.push_back(rcode);
    put16(out, qd);
    put16(out, an);
    put16(out, 0);
    put16(out, 0);
  };
  if (opcode != 0) {
    header(kNotImp, 0, 0);
    return out;
  }
  if (get16(msg + 4) != 1) return out;  // exactly one question
  const auto parsed = parse_name(msg, len);
  if (!parsed || parsed->second + 4 > len) return out;
  const auto& [name, qend] = *parsed;
  const uint16_t qtype = get16(msg + qend), qclass = get16(msg + qend + 2);

  uint8_t rcode = kNxDomain;
  std::vector<uint8_t> rdata;
  uint16_t rtype = 0;
  if (name == cfg.name) {
    rcode = kNoError;
    if (qclass == kClassIn && qtype == kTypeA) {
      rtype = kTypeA;
      rdata.assign(reinterpret_cast<const uint8_t*>(&cfg.a),
                   reinterpret_cast<const uint8_t*>(&cfg.a) + 4);
    } else if (qclass == kClassIn && qtype == kTypeAaaa && cfg.aaaa) {
      rtype = kTypeAaaa;
      rdata.assign(cfg.aaaa->s6_addr, cfg.aaaa->s6_addr + 16);
    }
  } else if (name == "servfail.vmscope.test") {
    rcode = kServFail;
  } else if (name == "refused.vmscope.test") {
    rcode = kRefused;
  }
  header(rcode, 1, rdata.empty() ? 0 : 1);
  out.insert(out.end(), msg + kHeader, msg + qend + 4);  // the question as asked
  if (!rdata.empty()) {
    put16(out, 0xc000 | kHeader);  // name: pointer to the question's
    put16(out, rtype);
    put16(out, kClassIn);
    put16(out, 0);
    put16(out, 60);  // TTL 60 s
    put16(out, static_cast<uint16_t>(rdata.size()));
    out.insert(out.end(), rdata.begin(), rdata.end());
  }
  return out;
}

int usage() {
  std::fprintf(stderr, "usage: dns_responder [-f] [-p PORT] NAME IPV4 [IPV6]\n");
  return 2;
}

// A bound UDP socket: dual-stack IPv6 when the kernel has IPv6, else IPv4.
int bind_socket(uint16_t port, const char** family) {
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    const int off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    sa.sin6_addr = in6addr_any;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      *family = "ipv6+ipv4";
      return fd;
    }
    close(fd);
  }
  fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  *family = "ipv4";
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  bool foreground = false;
  long port = 53;
  int opt;
  while ((opt = getopt(argc, argv, "fp:")) != -1) {
    if (opt == 'f') {
      foreground = true;
    } else if (opt == 'p') {
      port = std::strtol(optarg, nullptr, 10);
      if (port <= 0 || port > 65535) return usage();
    } else {
      return usage();
    }
  }
  if (argc - optind < 2 || argc - optind > 3) return usage();
  Config cfg;
  cfg.name = argv[optind];
  for (char& c : cfg.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!cfg.name.empty() && cfg.name.back() == '.') cfg.name.pop_back();
  if (inet_pton(AF_INET, argv[optind + 1], &cfg.a) != 1) return usage();
  if (argc - optind == 3) {
    in6_addr a6;
    if (inet_pton(AF_INET6, argv[optind + 2], &a6) != 1) return usage();
    cfg.aaaa = a6;
  }

  const char* family = "";
  const int fd = bind_socket(static_cast<uint16_t>(port), &family);
  if (fd < 0) {
    std::fprintf(stderr, "dns_responder: cannot bind udp port %ld: %s\n", port,
                 std::strerror(errno));
    return 1;
  }
  std::printf("dns_responder: %s on udp port %ld (%s)\n", cfg.name.c_str(), port, family);
  std::fflush(stdout);
  if (!foreground) {
    const pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) return 0;  // the port is bound: the caller may go on
    setsid();
  }

  uint8_t buf[1500];
  for (;;) {
    sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    const ssize_t n =
        recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      usleep(10000);  // e.g. ENOMEM: never spin
      continue;
    }
    const std::vector<uint8_t> reply = answer(cfg, buf, static_cast<size_t>(n));
    if (!reply.empty())
      sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_len);
  }
}
