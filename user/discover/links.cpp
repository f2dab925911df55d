#include "discover/links.h"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace vmscope {
namespace {

// Large enough that the kernel packs many links into one dump datagram.
constexpr size_t kBufSize = 32 * 1024;

// Attributes by type, for types up to Max; unknown (newer) types are ignored.
template <int Max>
struct AttrTable {
  const nlattr* tb[Max + 1] = {};
  const nlattr* operator[](int type) const { return tb[type]; }
  static int collect(const nlattr* attr, void* data) {
    auto* self = static_cast<AttrTable*>(data);
    int type = mnl_attr_get_type(attr);
    if (type >= 0 && type <= Max) self->tb[type] = attr;
    return MNL_CB_OK;
  }
};

// IFLA_LINKINFO -> kind and, for tun devices, whether it is a tap.
void parse_linkinfo(const nlattr* linkinfo, LinkInfo& link) {
  AttrTable<IFLA_INFO_MAX> info;
  mnl_attr_parse_nested(linkinfo, AttrTable<IFLA_INFO_MAX>::collect, &info);
  if (info[IFLA_INFO_KIND]) link.kind = mnl_attr_get_str(info[IFLA_INFO_KIND]);
  if (link.kind == "tun" && info[IFLA_INFO_DATA]) {
    AttrTable<IFLA_TUN_MAX> tun;
    mnl_attr_parse_nested(info[IFLA_INFO_DATA], AttrTable<IFLA_TUN_MAX>::collect, &tun);
    if (tun[IFLA_TUN_TYPE]) link.is_tap = mnl_attr_get_u8(tun[IFLA_TUN_TYPE]) == IFF_TAP;
  }
}

LinkInfo parse_link(const nlmsghdr* nlh) {
  auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  AttrTable<IFLA_MAX> t;
  mnl_attr_parse(nlh, sizeof(*ifm), AttrTable<IFLA_MAX>::collect, &t);
  LinkInfo link;
  link.ifindex = ifm->ifi_index;
  link.carrier = (ifm->ifi_flags & IFF_LOWER_UP) != 0;
  if (t[IFLA_IFNAME]) link.name = mnl_attr_get_str(t[IFLA_IFNAME]);
  if (t[IFLA_MTU]) link.mtu = mnl_attr_get_u32(t[IFLA_MTU]);
  if (t[IFLA_MASTER]) link.master = static_cast<int>(mnl_attr_get_u32(t[IFLA_MASTER]));
  if (t[IFLA_LINKINFO]) parse_linkinfo(t[IFLA_LINKINFO], link);
  return link;
}

// IFLA_STATS_LINK_64 payload; newer kernels append fields, so copy what we know.
bool parse_stats(const nlmsghdr* nlh, int& ifindex, rtnl_link_stats64& out) {
  auto* ism = static_cast<const if_stats_msg*>(mnl_nlmsg_get_payload(nlh));
  ifindex = static_cast<int>(ism->ifindex);
  AttrTable<IFLA_STATS_MAX> tb;
  mnl_attr_parse(nlh, sizeof(*ism), AttrTable<IFLA_STATS_MAX>::collect, &tb);
  const nlattr* attr = tb[IFLA_STATS_LINK_64];
  if (!attr) return false;
  out = {};
  std::memcpy(&out, mnl_attr_get_payload(attr),
              std::min<size_t>(mnl_attr_get_payload_len(attr), sizeof(out)));
  return true;
}

}  // namespace

void Netlink::Deleter::operator()(mnl_socket* s) const {
  mnl_socket_close(s);
}

Netlink::Netlink(mnl_socket* sock) : sock_(sock), buf_(kBufSize) {}
Netlink::Netlink(Netlink&&) noexcept = default;
Netlink& Netlink::operator=(Netlink&&) noexcept = default;
Netlink::~Netlink() = default;

Result<Netlink> Netlink::open(unsigned groups) {
  int flags = SOCK_CLOEXEC | (groups ? SOCK_NONBLOCK : 0);
  mnl_socket* sock = mnl_socket_open2(NETLINK_ROUTE, flags);
  if (!sock) return Error::from_errno("open rtnetlink socket", errno);
  Netlink nl(sock);
  if (mnl_socket_bind(sock, groups, MNL_SOCKET_AUTOPID) < 0)
    return Error::from_errno("bind rtnetlink socket", errno);
  if (groups) {
    // A burst of VM starts must not overrun the event queue; root may force the size.
    int size = 4 << 20;
    if (setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
      setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  return nl;
}

int Netlink::fd() const {
  return mnl_socket_get_fd(sock_.get());
}

Status Netlink::request(void* nlh_buf, const std::function<int(const nlmsghdr*)>& on_msg,
                        const char* what) {
  auto* nlh = static_cast<nlmsghdr*>(nlh_buf);
  nlh->nlmsg_seq = ++seq_;
  unsigned portid = mnl_socket_get_portid(sock_.get());
  if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0)
    return Error::from_errno(what, errno);
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    return (*static_cast<const std::function<int(const nlmsghdr*)>*>(data))(m);
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_.get(), buf_.data(), buf_.size());
    if (n < 0) return Error::from_errno(what, errno);
    int ret = mnl_cb_run(buf_.data(), n, seq_, portid, cb,
                         const_cast<std::function<int(const nlmsghdr*)>*>(&on_msg));
    if (ret == MNL_CB_ERROR) return Error::from_errno(what, errno);
    if (ret == MNL_CB_STOP) return {};
  }
}

Result<std::vector<LinkInfo>> Netlink::dump_links() {
  char req[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(req);
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  std::vector<LinkInfo> links;
  auto st = request(
      nlh,
      [&](const nlmsghdr* m) {
        if (m->nlmsg_type == RTM_NEWLINK) links.push_back(parse_link(m));
        return MNL_CB_OK;
      },
      "dump network links");
  if (!st) return st.error();
  return links;
}

Status Netlink::dump_stats(LinkStatsList& out) {
  char req[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(req);
  nlh->nlmsg_type = RTM_GETSTATS;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ism = static_cast<if_stats_msg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(if_stats_msg)));
  ism->family = AF_UNSPEC;
  ism->filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64);
  out.clear();
  bool sorted = true;
  auto st = request(
      nlh,
      [&](const nlmsghdr* m) {
        LinkStats s;
        if (m->nlmsg_type == RTM_NEWSTATS && parse_stats(m, s.ifindex, s.stats)) {
          sorted = sorted && (out.empty() || out.back().ifindex < s.ifindex);
          out.push_back(s);
        }
        return MNL_CB_OK;
      },
      "dump link statistics");
  if (!st) return st;
  if (!sorted)
    std::sort(out.begin(), out.end(),
              [](const LinkStats& a, const LinkStats& b) { return a.ifindex < b.ifindex; });
  return {};
}

Status Netlink::read_events(const std::function<void(const LinkEvent&)>& on_event) {
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    auto& fn = *static_cast<const std::function<void(const LinkEvent&)>*>(data);
    if (m->nlmsg_type == RTM_NEWLINK || m->nlmsg_type == RTM_DELLINK)
      fn(LinkEvent{m->nlmsg_type == RTM_DELLINK, parse_link(m)});
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_.get(), buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      return Error::from_errno("read link events", errno);
    }
    int ret = mnl_cb_run(buf_.data(), n, 0, 0, cb,
                         const_cast<std::function<void(const LinkEvent&)>*>(&on_event));
    if (ret == MNL_CB_ERROR) return Error::from_errno("parse link events", errno);
  }
}

}  // namespace vmscope
