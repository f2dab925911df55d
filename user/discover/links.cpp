#include "discover/links.h"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
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

// Attribute values read within their attribute: the kernel terminates strings and sizes
// integers, but these parsers take any bytes (tests/fuzz, netlink, found reads past an
// unterminated name).
std::string attr_str(const nlattr* a) {
  const auto* p = static_cast<const char*>(mnl_attr_get_payload(a));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(a)));
}

template <typename T>
std::optional<T> attr_int(const nlattr* a) {
  if (mnl_attr_get_payload_len(a) < sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, mnl_attr_get_payload(a), sizeof(v));
  return v;
}

// IFLA_LINKINFO -> kind and, for tun devices, whether it is a tap.
void parse_linkinfo(const nlattr* linkinfo, LinkInfo& link) {
  AttrTable<IFLA_INFO_MAX> info;
  mnl_attr_parse_nested(linkinfo, AttrTable<IFLA_INFO_MAX>::collect, &info);
  if (info[IFLA_INFO_KIND]) link.kind = attr_str(info[IFLA_INFO_KIND]);
  if (link.kind == "tun" && info[IFLA_INFO_DATA]) {
    AttrTable<IFLA_TUN_MAX> tun;
    mnl_attr_parse_nested(info[IFLA_INFO_DATA], AttrTable<IFLA_TUN_MAX>::collect, &tun);
    if (tun[IFLA_TUN_TYPE]) link.is_tap = attr_int<uint8_t>(tun[IFLA_TUN_TYPE]) == IFF_TAP;
  }
}

}  // namespace

std::optional<LinkInfo> parse_link_message(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg)) return std::nullopt;
  auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  AttrTable<IFLA_MAX> t;
  mnl_attr_parse(nlh, sizeof(*ifm), AttrTable<IFLA_MAX>::collect, &t);
  LinkInfo link;
  link.ifindex = ifm->ifi_index;
  link.carrier = (ifm->ifi_flags & IFF_LOWER_UP) != 0;
  if (t[IFLA_IFNAME]) link.name = attr_str(t[IFLA_IFNAME]);
  if (t[IFLA_MTU]) link.mtu = attr_int<uint32_t>(t[IFLA_MTU]).value_or(0);
  if (t[IFLA_MASTER])
    link.master = static_cast<int>(attr_int<uint32_t>(t[IFLA_MASTER]).value_or(0));
  if (t[IFLA_LINKINFO]) parse_linkinfo(t[IFLA_LINKINFO], link);
  return link;
}

// IFLA_STATS_LINK_64 payload; newer kernels append fields, so copy what we know.
std::optional<LinkStats> parse_stats_message(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(if_stats_msg)) return std::nullopt;
  auto* ism = static_cast<const if_stats_msg*>(mnl_nlmsg_get_payload(nlh));
  LinkStats s;
  s.ifindex = static_cast<int>(ism->ifindex);
  AttrTable<IFLA_STATS_MAX> tb;
  mnl_attr_parse(nlh, sizeof(*ism), AttrTable<IFLA_STATS_MAX>::collect, &tb);
  const nlattr* attr = tb[IFLA_STATS_LINK_64];
  if (!attr) return std::nullopt;
  std::memcpy(&s.stats, mnl_attr_get_payload(attr),
              std::min<size_t>(mnl_attr_get_payload_len(attr), sizeof(s.stats)));
  return s;
}

int parse_datagram(const char* buf, size_t len, unsigned seq, unsigned portid,
                   const std::function<int(const nlmsghdr*)>& on_msg) {
  // libmnl 1.0.4's mnl_nlmsg_ok compares nlmsg_len as an int: a length of 2^31 or more
  // passes, and the walk leaves the buffer (found by tests/fuzz, netlink). The kernel never
  // sends one (a datagram fits our buffer), but this takes any bytes: the walk ends at the
  // first message that does not fit, as mnl_cb_run ends at a short one.
  size_t whole = 0;
  while (len - whole >= sizeof(nlmsghdr)) {
    uint32_t n;
    std::memcpy(&n, buf + whole + offsetof(nlmsghdr, nlmsg_len), sizeof(n));
    if (n < sizeof(nlmsghdr) || n > len - whole) break;
    whole += std::min<size_t>(MNL_ALIGN(n), len - whole);
  }
  len = whole;
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    return (*static_cast<const std::function<int(const nlmsghdr*)>*>(data))(m);
  };
  return mnl_cb_run(buf, len, seq, portid, cb,
                    const_cast<std::function<int(const nlmsghdr*)>*>(&on_msg));
}

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
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_.get(), buf_.data(), buf_.size());
    if (n < 0) return Error::from_errno(what, errno);
    int ret = parse_datagram(buf_.data(), static_cast<size_t>(n), seq_, portid, on_msg);
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
        if (m->nlmsg_type != RTM_NEWLINK) return MNL_CB_OK;
        if (auto link = parse_link_message(m)) links.push_back(std::move(*link));
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
        if (m->nlmsg_type != RTM_NEWSTATS) return MNL_CB_OK;
        if (auto s = parse_stats_message(m)) {
          sorted = sorted && (out.empty() || out.back().ifindex < s->ifindex);
          out.push_back(*s);
        }
        return MNL_CB_OK;
      },
      "dump link statistics");
  if (!st) return st;
  if (!sorted)
    std::sort(out.begin(), out.end(),
              [](const LinkStats& a, const LinkStats& b) { return a.ifindex < b.ifindex; });
  // Reused every tick: grown by doubling, it would keep up to twice the devices' worth
  // (~200 B each: 1.4 MB more at 10,000 VMs). Trimmed once, it stays as long as the
  // device count does.
  if (out.capacity() > out.size() + out.size() / 8 + 64) out.shrink_to_fit();
  return {};
}

Status Netlink::read_events(const std::function<void(const LinkEvent&)>& on_event) {
  const std::function<int(const nlmsghdr*)> on_msg = [&](const nlmsghdr* m) {
    if (m->nlmsg_type != RTM_NEWLINK && m->nlmsg_type != RTM_DELLINK) return MNL_CB_OK;
    if (auto link = parse_link_message(m))
      on_event(LinkEvent{m->nlmsg_type == RTM_DELLINK, std::move(*link)});
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_.get(), buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      return Error::from_errno("read link events", errno);
    }
    int ret = parse_datagram(buf_.data(), static_cast<size_t>(n), 0, 0, on_msg);
    if (ret == MNL_CB_ERROR) return Error::from_errno("parse link events", errno);
  }
}

}  // namespace vmscope
