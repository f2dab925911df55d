// Test helper: holds a tap exactly as solo5-hvt (or qemu) does, so discovery sees a real
// VM process. Start it with the argv the launcher would have (argv[0] "solo5-hvt",
// "--net:service=vmmtap0", ...). The tap comes from $VMSCOPE_TAP, else from the argv
// (--net:NET=TAP, --net=TAP, ifname=TAP).
//
// stdin:  frames to inject into the tap (what the "VM" sends), each as a 2-byte
//         big-endian length followed by the frame.
// stdout: "ready <tap>" once the tap is open; on stdin EOF, after draining what the host
//         sent: "rx frames=N bytes=N tcp=N udp=N icmp=N other=N syns=N" — a tally of the
//         frames read from the tap (what the "VM" received); it then keeps holding the
//         tap, like a VM, until killed.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::string tap_from_argv(int argc, char** argv) {
  if (const char* env = std::getenv("VMSCOPE_TAP")) return env;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.rfind("--net", 0) == 0 && a.rfind("--net-mac", 0) != 0) {
      if (auto eq = a.find('='); eq != std::string::npos) return a.substr(eq + 1);
    }
    if (auto p = a.find("ifname="); p != std::string::npos) {
      std::string rest = a.substr(p + 7);
      return rest.substr(0, rest.find(','));
    }
  }
  return {};
}

struct Tally {
  uint64_t frames = 0, bytes = 0, tcp = 0, udp = 0, icmp = 0, other = 0, syns = 0;
  void add(const uint8_t* f, size_t n) {
    frames++;
    bytes += n;
    if (n >= 34 && f[12] == 0x08 && f[13] == 0x00) {
      size_t l4 = 14 + (f[14] & 0xf) * 4;
      switch (f[23]) {
        case 6:
          tcp += n;
          if (n > l4 + 13 && (f[l4 + 13] & 0x12) == 0x02) syns++;
          return;
        case 17:
          udp += n;
          return;
        case 1:
          icmp += n;
          return;
      }
    }
    other += n;
  }
};

bool read_full(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tap = tap_from_argv(argc, argv);
  if (tap.empty() || tap.size() >= IFNAMSIZ) {
    std::fprintf(stderr, "tap_holder: no tap name (set VMSCOPE_TAP or --net:NET=TAP)\n");
    return 2;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    std::perror("tap_holder: open /dev/net/tun");
    return 1;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, tap.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    std::perror("tap_holder: TUNSETIFF");
    return 1;
  }
  std::printf("ready %s\n", ifr.ifr_name);
  std::fflush(stdout);

  Tally rx;
  std::vector<uint8_t> buf(65536);
  bool stdin_open = true;
  int idle_polls = 0;
  // After stdin closes, keep reading until the tap has been quiet for 300 ms so that
  // everything the host sent is counted.
  while (stdin_open || idle_polls < 3) {
    pollfd pfd[2] = {{fd, POLLIN, 0}, {stdin_open ? 0 : -1, POLLIN, 0}};
    int n = poll(pfd, 2, 100);
    if (n < 0) return 1;
    if (n == 0) {
      if (!stdin_open) idle_polls++;
      continue;
    }
    idle_polls = 0;
    if (pfd[0].revents & POLLIN) {
      ssize_t r;
      while ((r = read(fd, buf.data(), buf.size())) > 0) rx.add(buf.data(), static_cast<size_t>(r));
    }
    if (pfd[1].revents & (POLLIN | POLLHUP)) {
      uint8_t len[2];
      if (!read_full(0, len, 2)) {
        stdin_open = false;
        continue;
      }
      size_t flen = (size_t{len[0]} << 8) | len[1];
      if (!read_full(0, buf.data(), flen)) {
        stdin_open = false;
        continue;
      }
      if (write(fd, buf.data(), flen) != static_cast<ssize_t>(flen)) {
        std::perror("tap_holder: write frame");
        return 1;
      }
    }
  }
  std::printf("rx frames=%llu bytes=%llu tcp=%llu udp=%llu icmp=%llu other=%llu syns=%llu\n",
              (unsigned long long)rx.frames, (unsigned long long)rx.bytes,
              (unsigned long long)rx.tcp, (unsigned long long)rx.udp, (unsigned long long)rx.icmp,
              (unsigned long long)rx.other, (unsigned long long)rx.syns);
  std::fflush(stdout);
  // Keep holding the tap, as a VM does, until killed.
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, -1) > 0)
      while (read(fd, buf.data(), buf.size()) > 0) {
      }
  }
}
