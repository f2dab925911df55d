// Fuzz target: one received rtnetlink datagram (what recv returns on the link event
// socket or during a link or statistics dump), decoded as Netlink does: link messages
// into LinkInfo, statistics messages into LinkStats. The bytes are copied to a buffer of
// exactly their size, so that a read past the datagram is an ASan finding.
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "discover/links.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> buf(data, data + size);
  size_t links = 0, stats = 0;
  const std::function<int(const nlmsghdr*)> on_msg = [&](const nlmsghdr* m) {
    if (m->nlmsg_type == RTM_NEWLINK || m->nlmsg_type == RTM_DELLINK) {
      if (auto link = vmscope::parse_link_message(m)) {
        FUZZ_CHECK(link->name.find('\0') == std::string::npos);
        FUZZ_CHECK(!link->is_tap || link->kind == "tun");
        ++links;
      }
    } else if (m->nlmsg_type == RTM_NEWSTATS) {
      if (vmscope::parse_stats_message(m)) ++stats;
    }
    return MNL_CB_OK;
  };
  // As a dump reply (sequence and port checked) and as events (not checked).
  vmscope::parse_datagram(buf.data(), buf.size(), 0, 0, on_msg);
  vmscope::parse_datagram(buf.data(), buf.size(), 1, 4242, on_msg);
  FUZZ_CHECK(links + stats <= 2 * size / sizeof(nlmsghdr));
  return 0;
}
