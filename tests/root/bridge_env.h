// A bridge with taps in a namespace of its own, the agent run in it, and waits on what
// the agent prints: shared by the root tests of network accounting and of kept state.
#pragma once

#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_env.h"

namespace vmscope::test {

inline const std::vector<std::string> kSolo5Args = {
    "--mem=64", "--net:service=vmmtap0",        "--net-mac:service=02:00:00:00:00:02",
    "--",       "/run/albatross/alice:web.img", "--name=web"};

// A bridge br0 (10.99.0.1/24) in its own namespace; the "VM" is 10.99.0.2 behind taps.
struct Bridge {
  Netns ns;
  Bridge() {
    // No multicast on the host side: IGMP reports at link-up would reach the taps at
    // random moments and make "traffic sent" inexact.
    ns.must("ip link add br0 type bridge mcast_snooping 0");
    ns.must("ip link set br0 multicast off");
    ns.must("ip addr add 10.99.0.1/24 dev br0");
    ns.must("ip link set br0 up");
  }
  void add_tap(const std::string& tap) {
    ns.must("ip tuntap add " + tap + " mode tap");
    ns.must("ip link set " + tap + " master br0 up");
  }
  std::unique_ptr<Child> hold(const std::string& argv0, const std::vector<std::string>& args) {
    auto c = std::make_unique<Child>(helper_bin("tap_holder"), args,
                                     SpawnOptions{ns.name(), argv0, {}, true});
    if (!c->wait_line([](const std::string& l) { return l.rfind("ready ", 0) == 0; }, 5s))
      throw std::runtime_error("tap_holder did not start: " + c->stderr_text());
    return c;
  }
  // bin: another build of vmscope (the upgrade test's variant).
  std::unique_ptr<Child> agent(std::vector<std::string> extra,
                               const std::string& bin = vmscope_bin()) {
    std::vector<std::string> args = {"run", "--interval", "0.3", "--log-level", "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Child>(bin, args, SpawnOptions{ns.name(), "", {}, false});
  }
};

// A bridge with one tap, held by a solo5-hvt-looking process, and a UDP frame (100 bytes
// of payload) from its VM.
struct WebVm {
  Bridge br;
  std::unique_ptr<Child> holder;
  std::vector<uint8_t> frame;
  WebVm() {
    br.add_tap("vmmtap0");
    holder = br.hold("solo5-hvt", kSolo5Args);
    frame = ipv4_frame(mac_of(br.ns, "br0"), kVmMac, ip("10.99.0.2"), ip("10.99.0.1"), 17, 100);
  }
};

// Waits until the tap's kernel counter reaches `want`: the holder writes injected frames
// asynchronously.
inline bool wait_stat(const Netns& ns, const std::string& dev, const std::string& stat,
                      uint64_t want) {
  for (int i = 0; i < 200; ++i) {
    if (ns.stat(dev, stat) >= want) return true;
    usleep(10000);
  }
  return false;
}

// First point of a measurement with the given tag value, stamped after `after_ns`.
inline std::optional<Point> wait_point(Child& agent, const std::string& measurement,
                                       const std::string& tag, const std::string& value,
                                       int64_t after_ns, std::chrono::milliseconds timeout = 5s) {
  auto line = agent.wait_line(
      [&](const std::string& l) {
        auto p = parse_point(l);
        return p && p->measurement == measurement && p->tags[tag] == value &&
               p->timestamp > after_ns;
      },
      timeout);
  if (!line) return std::nullopt;
  return parse_point(*line);
}

// One frame injected by the holder every 0.5 ms from start() to stop(), while agents
// come and go: what an upgrade or restart must count in full.
class PacedTraffic {
 public:
  PacedTraffic(Child& holder, std::vector<uint8_t> frame)
      : holder_(holder), frame_(std::move(frame)) {}
  ~PacedTraffic() { stop(); }
  void start() {
    stop_ = false;
    thread_ = std::thread([this] {
      while (!stop_) {
        inject(holder_, frame_);
        ++sent_;
        usleep(500);
      }
    });
  }
  void stop() {
    if (!stop_.exchange(true) && thread_.joinable()) thread_.join();
  }
  uint64_t sent() const { return sent_; }

 private:
  Child& holder_;
  std::vector<uint8_t> frame_;
  std::atomic<bool> stop_{true};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

}  // namespace vmscope::test
