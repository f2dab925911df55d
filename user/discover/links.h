// Network devices from rtnetlink (libmnl): one dump of all links, link events as they
// happen, and one dump of every device's kernel statistics per tick.
#pragma once

#include <linux/if_link.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"

struct mnl_socket;
struct nlmsghdr;

namespace vmscope {

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  std::string kind;     // IFLA_INFO_KIND: "tun", "bridge", "veth", ... ("" for physical)
  bool is_tap = false;  // kind "tun" in IFF_TAP mode: what VMs use
  int master = 0;       // ifindex of the bridge it is enslaved to, 0 if none
  uint32_t mtu = 0;
  bool carrier = false;  // IFF_LOWER_UP: a tap has it while a process holds it open
};

struct LinkEvent {
  bool removed = false;  // RTM_DELLINK
  LinkInfo link;
};

struct LinkStats {
  int ifindex = 0;
  rtnl_link_stats64 stats{};
};
// Every device's statistics, ordered by ifindex (the kernel dumps in that order; the
// drain walks it alongside the taps); a vector reused from tick to tick, not a node per
// device.
using LinkStatsList = std::vector<LinkStats>;

// Decoding of received rtnetlink datagrams, apart from the socket so that tests and the
// fuzzer (tests/fuzz) feed it any bytes. A datagram is a run of messages; each message
// that belongs to the request (seq, portid; 0 for events) is passed to on_msg. Returns
// what libmnl's mnl_cb_run does: MNL_CB_STOP at the end of a dump, MNL_CB_ERROR with
// errno set for a malformed datagram or an error reply, else MNL_CB_OK (more to come).
int parse_datagram(const char* buf, size_t len, unsigned seq, unsigned portid,
                   const std::function<int(const struct nlmsghdr*)>& on_msg);
// An RTM_NEWLINK or RTM_DELLINK message; nullopt when it is too short to hold one.
// Attributes too short for their type are ignored.
std::optional<LinkInfo> parse_link_message(const struct nlmsghdr* nlh);
// The 64-bit link statistics of an RTM_NEWSTATS message; nullopt without them.
std::optional<LinkStats> parse_stats_message(const struct nlmsghdr* nlh);

// One rtnetlink socket (RAII). Requests are synchronous; the event socket is polled.
class Netlink {
 public:
  // groups: RTMGRP_* bitmask to subscribe to (0 for a request-only socket).
  static Result<Netlink> open(unsigned groups);
  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  int fd() const;
  Result<std::vector<LinkInfo>> dump_links();
  // Kernel statistics of every device (RTM_GETSTATS, 64-bit link stats only).
  Status dump_stats(LinkStatsList& out);
  // Reads all pending events without blocking. Returns an error on overrun (ENOBUFS):
  // the caller must then resynchronise with dump_links().
  Status read_events(const std::function<void(const LinkEvent&)>& on_event);

 private:
  explicit Netlink(mnl_socket* sock);
  Status request(void* nlh_buf, const std::function<int(const struct nlmsghdr*)>& on_msg,
                 const char* what);
  struct Deleter {
    void operator()(mnl_socket* s) const;
  };
  std::unique_ptr<mnl_socket, Deleter> sock_;
  unsigned seq_ = 0;
  std::vector<char> buf_;
};

}  // namespace vmscope
