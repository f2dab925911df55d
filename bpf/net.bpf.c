// SPDX-License-Identifier: GPL-2.0
/* Network accounting: tc programs on the ingress and egress of VM taps and bridges.
 * Counts bytes, packets, L2 multicast/broadcast, bytes per L4 protocol and TCP SYNs
 * per device and direction; on VM taps also how the VM's services answer (service.h:
 * handshakes, DNS, HTTP status lines). Always returns "continue" (TCX_NEXT /
 * TC_ACT_UNSPEC, both -1) so later programs and filters on the device still run. */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "vmscope.h"

#define VS_CONTINUE (-1) /* TCX_NEXT == TC_ACT_UNSPEC */

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_ICMPV6_ 58
#define IPV6_HOPOPTS 0
#define IPV6_ROUTING 43
#define IPV6_FRAGMENT 44
#define IPV6_AH 51
#define IPV6_DSTOPTS 60
#define IPV6_EXT_MAX 6 /* extension headers walked before giving up (OTHER) */
#define IPV6_EXT_TYPES                                                                           \
	(1ULL << IPV6_HOPOPTS | 1ULL << IPV6_ROUTING | 1ULL << IPV6_FRAGMENT | 1ULL << IPV6_AH | \
	 1ULL << IPV6_DSTOPTS)
/* L4 offset of a later fragment, which carries no L4 header: past the end of any skb,
 * so that reading the TCP flags (or a further extension header) there fails. */
#define NO_L4 0x7fff0000
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

/* Word compares of header bytes below spell the bytes as a little-endian load sees them
 * (as DNS_PORT_BE in service.h). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "header word constants are little-endian");

/* The fast path's layout: the common frames fall through, the rest jumps away. */
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VS_IFINDEX_DIRECT_MAX);
	__type(key, __u32); /* ifindex */
	__type(value, __u32); /* slot + 1; 0 = not monitored */
} if_slot SEC(".maps");

/* Rare hosts with huge ifindexes (long tap churn): bounded hash fallback. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} if_slot_far SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct vs_dev_counters);
} net_stats SEC(".maps");

/* Out of line on purpose: with both lookups at one call site the verifier could not
 * inline the array lookup (two maps behind one call), costing ~15 ns per packet. */
static __noinline __u32 *far_slot(__u32 ifindex)
{
	return bpf_map_lookup_elem(&if_slot_far, &ifindex);
}

#include "service.h"

/* Header bytes at off: straight from the linear data when it is there (fast path),
 * else copied out of a paged skb (or from beyond the bound, e.g. behind long IPv6
 * extension headers). */
static __always_inline void *header(struct __sk_buff *skb, __u32 off, void *buf, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	/* off <= 128 bounds the pointer arithmetic for the verifier */
	if (off <= 128 && data + off + len <= end)
		return data + off;
	if (bpf_skb_load_bytes(skb, off, buf, len))
		return 0;
	return buf;
}

/* Service hooks, called where a classification path knows the L4 header. Cheap tests
 * first, inline: only SYN and RST segments, segments from the VM that begin with an HTTP
 * status line ("HTTP/1.x N", read from the linear data, else copied) and DNS datagrams
 * (to port 53 towards the VM, from port 53 out of it) call the out-of-line vs_service(),
 * which checks that the slot is a VM tap. Every other frame pays these compares only
 * (a TCP segment from the VM whose payload is paged: one 10-byte copy). p: the linear
 * data, or null where the caller copies headers (classify_slow). Never called for an
 * IPv4 fragment other than the first: it carries no L4 header. */

/* The HTTP hook of a TCP segment from the VM (not SYN, not RST): th is the TCP header's
 * bytes 12 and 13 as a little-endian load sees them (data offset in the low byte). The
 * status line is read from the linear data, else copied (a paged payload). */
static __always_inline void http_status_hook(struct __sk_buff *skb, __u32 len, __u32 l3, __u32 l4,
					     __u16 th, __u8 *p, void *end)
{
	__u32 payoff = l4 + ((th >> 2) & 0x3c); /* the data offset in bytes */
	if (likely(p && (void *)(p + payoff + 10) <= end)) {
		__u8 *h = p + payoff;
		if (unlikely(is_http_status(h)))
			vs_service(skb, VS_SVC_HTTP | (__u32)h[9] << 16, l3, l4);
		return;
	}
	/* beyond the linear data, the bytes are in the frame if len says so */
	__u8 buf[12] __attribute__((aligned(4)));
	if (len >= payoff + 10 && !bpf_skb_load_bytes(skb, payoff, buf, 10) && is_http_status(buf))
		vs_service(skb, VS_SVC_HTTP | (__u32)buf[9] << 16, l3, l4);
}

/* TCP bytes and SYNs, then the service hooks: th points to the TCP header's bytes 12
 * (data offset) and 13 (flags), in the linear data or copied. A data segment (no SYN,
 * no RST: nearly every one) tests its flags once and falls through. */
static __always_inline void count_tcp_segment(struct __sk_buff *skb, struct vs_net_counters *c,
					      __u32 len, __u32 dir, __u32 v6, __u32 l3, __u32 l4,
					      const __u8 *th, __u8 *p, void *end)
{
	/* bytes 12 and 13 in one load: the data offset (low byte), the flags (high byte) */
	__u16 t = *(__u16 *)th;
	c->l4_bytes[VS_L4_TCP] += len;
	if (likely(!(t & (TCP_FLAG_SYN | TCP_FLAG_RST) << 8))) {
		if (dir == VS_DIR_INGRESS)
			http_status_hook(skb, len, l3, l4, t, p, end);
		return;
	}
	c->tcp_syns += (t & (TCP_FLAG_SYN | TCP_FLAG_ACK) << 8) == TCP_FLAG_SYN << 8;
	vs_service(skb,
		   (dir == VS_DIR_EGRESS ? VS_SVC_EGRESS : 0) | (v6 ? VS_SVC_IPV6 : 0) |
			   IPPROTO_TCP << 8,
		   l3, l4);
}

/* UDP bytes, then the DNS hook. port: the UDP header's destination port towards the VM,
 * its source port from it (network order). */
static __always_inline void count_udp_datagram(struct __sk_buff *skb, struct vs_net_counters *c,
					       __u32 len, __u32 dir, __u32 v6, __u32 l3, __u32 l4,
					       __u16 port)
{
	c->l4_bytes[VS_L4_UDP] += len;
	if (likely(port != DNS_PORT_BE))
		return;
	vs_service(skb,
		   (dir == VS_DIR_EGRESS ? VS_SVC_EGRESS : 0) | (v6 ? VS_SVC_IPV6 : 0) |
			   IPPROTO_UDP << 8,
		   l3, l4);
}

/* L2 multicast or broadcast (the group bit is set). eth: the linear data, or a 4-byte
 * aligned copy. */
static __always_inline void count_l2_group(struct vs_net_counters *c, const __u8 *eth)
{
	if (*(__u32 *)eth == 0xffffffff && *(__u16 *)(eth + 4) == 0xffff)
		c->bcast_packets++;
	else
		c->mcast_packets++;
}

/* Bytes by the L4 protocol of an IP frame whose protocol matches its IP version
 * (classify_slow: ICMP over IPv6 or ICMPv6 over IPv4 arrive as OTHER). */
static __always_inline void count_l4(struct vs_net_counters *c, __u8 l4proto, __u32 len)
{
	switch (l4proto) {
	case IPPROTO_TCP:
		c->l4_bytes[VS_L4_TCP] += len;
		return;
	case IPPROTO_UDP:
		c->l4_bytes[VS_L4_UDP] += len;
		return;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6_:
		c->l4_bytes[VS_L4_ICMP] += len;
		return;
	}
	c->l4_bytes[VS_L4_OTHER] += len;
}

/* What follows IPv6 extension headers starting at l4off with type l4proto: the L4
 * offset << 32 | the protocol (offset NO_L4 behind a later fragment; an extension type
 * as protocol after more than IPV6_EXT_MAX headers), or VS_NO_HEADER when a header
 * cannot be read. A global function: the verifier checks it once on its own, instead
 * of again on every path of classify() (its loop multiplied their states: ~1 s to load
 * net.bpf.o instead of ~10 ms). Headers are always copied, one path per header. */
#define VS_NO_HEADER (~0ULL)
__noinline __u64 vs_ipv6_skip_ext(struct __sk_buff *skb, __u32 l4off, __u32 l4proto)
{
	__u8 ext[8];
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		if (l4proto >= 64 || !((1ULL << l4proto) & IPV6_EXT_TYPES))
			break;
		if (bpf_skb_load_bytes(skb, l4off, ext, sizeof(ext)))
			return VS_NO_HEADER;
		__u32 type = l4proto;
		l4proto = ext[0];
		if (type == IPV6_FRAGMENT) {
			/* only the fragment at offset 0 carries the L4 header */
			l4off = ((ext[2] << 8 | ext[3]) & 0xfff8) ? NO_L4 : l4off + 8;
		} else if (type == IPV6_AH) {
			l4off += ((__u32)ext[1] + 2) * 4;
		} else {
			l4off += ((__u32)ext[1] + 1) * 8;
		}
	}
	return (__u64)l4off << 32 | l4proto;
}

static __noinline void classify_slow(struct __sk_buff *skb, struct vs_net_counters *c, __u32 len,
				     __u32 dir, int l2_counted)
{
	__u8 buf[40] __attribute__((aligned(4)));
	__u8 *eth = header(skb, 0, buf, ETH_HLEN);
	if (!eth) {
		c->l4_bytes[VS_L4_OTHER] += len;
		return;
	}
	if (!l2_counted && (eth[0] & 1))
		count_l2_group(c, eth);
	__u16 proto = ((__u16)eth[12] << 8) | eth[13];
	__u32 off = ETH_HLEN;
	/* One tag (802.1Q or 802.1ad) or two (QinQ: 802.1ad or 802.1Q, then 802.1Q). */
	for (int i = 0; i < 2 && (proto == ETH_P_8021Q || proto == ETH_P_8021AD); i++) {
		__u8 *vlan = header(skb, off, buf, 4);
		if (!vlan)
			goto other;
		proto = ((__u16)vlan[2] << 8) | vlan[3];
		off += 4;
	}

	__u8 l4proto;
	__u32 l4off;
	if (proto == ETH_P_IP) {
		__u8 *ip = header(skb, off, buf, 20);
		/* version 4 and IHL >= 5 (0x45..0x4f), else no L4 header to find (the stack drops
		 * these) */
		if (!ip || (__u8)(ip[0] - 0x45) > 0x0a)
			goto other;
		l4proto = ip[9];
		if (l4proto == IPPROTO_ICMPV6_)
			goto other; /* not ICMP over IPv4, as in classify() */
		l4off = ((ip[6] & 0x1f) | ip[7]) ? NO_L4 : off + (ip[0] & 0xf) * 4;
	} else if (proto == ETH_P_IPV6) {
		__u8 *ip6 = header(skb, off, buf, 40);
		if (!ip6 || (ip6[0] & 0xf0) != 0x60)
			goto other;
		l4proto = ip6[6];
		l4off = off + 40;
		/* Extension headers (MLD rides behind hop-by-hop): the protocol is after them. */
		if (l4proto < 64 && ((1ULL << l4proto) & IPV6_EXT_TYPES)) {
			__u64 l4 = vs_ipv6_skip_ext(skb, l4off, l4proto);
			if (l4 == VS_NO_HEADER)
				goto other;
			l4proto = (__u8)l4;
			l4off = (__u32)(l4 >> 32);
		}
		if (l4proto == IPPROTO_ICMP)
			goto other; /* not ICMPv6 */
	} else {
		goto other;
	}

	if (l4proto == IPPROTO_TCP) {
		__u8 *tcp = header(skb, l4off + 12, buf, 2);
		if (tcp) {
			count_tcp_segment(skb, c, len, dir, proto == ETH_P_IPV6, off, l4off, tcp, 0,
					  0);
			return;
		}
	} else if (l4proto == IPPROTO_UDP) {
		__u8 *udp = header(skb, l4off, buf, 4);
		if (udp) {
			__u8 *port = udp + (dir == VS_DIR_EGRESS ? 2 : 0);
			count_udp_datagram(skb, c, len, dir, proto == ETH_P_IPV6, off, l4off,
					   bpf_htons((__u16)port[0] << 8 | port[1]));
			return;
		}
	}
	count_l4(c, l4proto, len);
	return;
other:
	c->l4_bytes[VS_L4_OTHER] += len;
}

/* The bytes classify() checks once, before its one-word tests: up to the TCP flags behind
 * one VLAN tag, so that a TCP segment behind one tag needs no other check. Shorter frames
 * take the path for short frames (ARP, 42 or 46 B, counted there; the rest, e.g. UDP
 * with under 10 bytes of payload, through classify_slow()); a TCP segment has 54 B at
 * least. */
#define CLASSIFY_LINEAR 52

/* Whether the n bytes at h (the frame's offset off) are in the linear data, for the
 * classification below classify()'s first check: known where off is a constant and the
 * bytes lie within CLASSIFY_LINEAR (no test), else tested. */
static __always_inline int in_linear(__u8 *h, void *end, __u32 off, __u32 n)
{
	if (__builtin_constant_p(off) && off + n <= CLASSIFY_LINEAR)
		return 1;
	return (void *)(h + n) <= end;
}

/* TCP at l4off of an IP header at l3 (both offsets into the linear data, usually
 * constants) whose bytes up to the flags the caller has not checked: 0 if they are not
 * in the linear data (classify_slow() decides), else counts and calls the service hooks. */
static __always_inline int count_tcp(struct __sk_buff *skb, __u8 *p, void *end,
				     struct vs_net_counters *c, __u32 len, __u32 dir, __u32 v6,
				     __u32 l3, __u32 l4off)
{
	__u8 *tcp = p + l4off;
	if (likely(in_linear(tcp, end, l4off, 14))) {
		count_tcp_segment(skb, c, len, dir, v6, l3, l4off, tcp + 12, p, end);
		return 1;
	}
	return 0;
}

/* UDP, as count_tcp(). */
static __always_inline int count_udp(struct __sk_buff *skb, __u8 *p, void *end,
				     struct vs_net_counters *c, __u32 len, __u32 dir, __u32 v6,
				     __u32 l3, __u32 l4off)
{
	__u8 *udp = p + l4off;
	if (likely(in_linear(udp, end, l4off, 4))) {
		count_udp_datagram(skb, c, len, dir, v6, l3, l4off,
				   *(__u16 *)(udp + (dir == VS_DIR_EGRESS ? 2 : 0)));
		return 1;
	}
	return 0;
}

/* An IPv4 frame other than TCP or UDP in a first (or no) fragment. A later fragment
 * carries no L4 header: its bytes count by protocol. */
static __always_inline int count_ip4_other(struct vs_net_counters *c, __u32 len, __u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		c->l4_bytes[VS_L4_TCP] += len;
		return 1;
	case IPPROTO_UDP:
		c->l4_bytes[VS_L4_UDP] += len;
		return 1;
	case IPPROTO_ICMP:
		c->l4_bytes[VS_L4_ICMP] += len;
		return 1;
	}
	c->l4_bytes[VS_L4_OTHER] += len; /* ICMPv6 over IPv4 too */
	return 1;
}

/* Bytes 6-9 of an IPv4 header as a little-endian word (flags and fragment offset, TTL,
 * protocol), masked to the fragment offset and the protocol: one compare tells a TCP or
 * UDP header in a first (or no) fragment. */
#define IP4_FRAG_PROTO_MASK 0xff00ff1fU
#define IP4_TCP_NOFRAG 0x06000000U
#define IP4_UDP_NOFRAG 0x11000000U

/* IPv4 at the constant offset l3 whose fixed header the caller checked to be in the
 * linear data, its L4 header at l4off (a constant, or l3 + IHL * 4 behind options).
 * Returns 0, having counted nothing, where classify_slow() must decide (an L4 header
 * beyond the linear data). */
static __always_inline int classify_ip4_l4(struct __sk_buff *skb, __u8 *p, void *end,
					   struct vs_net_counters *c, __u32 len, __u32 dir,
					   __u32 l3, __u32 l4off)
{
	__u32 x = *(__u32 *)(p + l3 + 6) & IP4_FRAG_PROTO_MASK;
	if (likely(x == IP4_TCP_NOFRAG))
		return count_tcp(skb, p, end, c, len, dir, 0, l3, l4off);
	/* not folded with the test above into a switch, whose lowering would put TCP behind
	 * a jump: a separate compare of its own */
	asm volatile("" ::: "memory");
	if (x == IP4_UDP_NOFRAG)
		return count_udp(skb, p, end, c, len, dir, 0, l3, l4off);
	return count_ip4_other(c, len, p[l3 + 9]);
}

/* IPv4 without options (version 4, IHL 5: nearly every frame) at the constant offset
 * l3 (14, 18 or 22), whose header the caller checked to be in the linear data. All
 * offsets are constants. */
static __always_inline int classify_ip4_5(struct __sk_buff *skb, __u8 *p, void *end,
					  struct vs_net_counters *c, __u32 len, __u32 dir, __u32 l3)
{
	return classify_ip4_l4(skb, p, end, c, len, dir, l3, l3 + 20);
}

/* IPv4 at the constant offset l3 with version 4 and an IHL other than 5 (hlen: the IHL
 * in bytes): with options (rare) the L4 header is at a variable offset, on a path of its
 * own so that the common one keeps constant offsets. IHL < 5: no L4 header to find (the
 * stack drops these). */
static __always_inline int classify_ip4_opt(struct __sk_buff *skb, __u8 *p, void *end,
					    struct vs_net_counters *c, __u32 len, __u32 dir,
					    __u32 l3, __u32 hlen)
{
	if (likely(hlen > 20))
		return classify_ip4_l4(skb, p, end, c, len, dir, l3, l3 + hlen);
	c->l4_bytes[VS_L4_OTHER] += len;
	return 1;
}

/* IPv4 at the constant offset l3, any version and IHL byte. */
static __always_inline int classify_ip4(struct __sk_buff *skb, __u8 *p, void *end,
					struct vs_net_counters *c, __u32 len, __u32 dir, __u32 l3)
{
	__u8 vihl = p[l3];
	if (likely(vihl == 0x45))
		return classify_ip4_5(skb, p, end, c, len, dir, l3);
	if (unlikely((vihl & 0xf0) != 0x40)) {
		c->l4_bytes[VS_L4_OTHER] += len; /* not version 4 */
		return 1;
	}
	return classify_ip4_opt(skb, p, end, c, len, dir, l3, (vihl & 0xf) * 4);
}

/* IPv6 at the constant offset l3 whose version the caller checked (the Ethernet header
 * and tags too, nothing beyond), as classify_ip4_5(). A TCP segment takes one bounds
 * test; extension headers (and a header beyond the linear data) are left to
 * classify_slow(). */
static __always_inline int classify_ip6_v6(struct __sk_buff *skb, __u8 *p, void *end,
					   struct vs_net_counters *c, __u32 len, __u32 dir,
					   __u32 l3)
{
	if (likely((void *)(p + l3 + 54) <= end && p[l3 + 6] == IPPROTO_TCP)) {
		count_tcp_segment(skb, c, len, dir, 1, l3, l3 + 40, p + l3 + 52, p, end);
		return 1;
	}
	if (unlikely((void *)(p + l3 + 40) > end))
		return 0;
	__u8 proto = p[l3 + 6];
	if (proto == IPPROTO_TCP)
		return 0; /* its flags are beyond the linear data */
	if (proto == IPPROTO_UDP)
		return count_udp(skb, p, end, c, len, dir, 1, l3, l3 + 40);
	if (proto == IPPROTO_ICMPV6_) {
		c->l4_bytes[VS_L4_ICMP] += len;
		return 1;
	}
	if (proto < 64 && ((1ULL << proto) & IPV6_EXT_TYPES))
		return 0;
	c->l4_bytes[VS_L4_OTHER] += len; /* ICMP over IPv6 too */
	return 1;
}

/* IPv6 at the constant offset l3, any version nibble. */
static __always_inline int classify_ip6(struct __sk_buff *skb, __u8 *p, void *end,
					struct vs_net_counters *c, __u32 len, __u32 dir, __u32 l3)
{
	if (unlikely((void *)(p + l3 + 40) > end))
		return 0;
	if (unlikely((p[l3] & 0xf0) != 0x60)) {
		c->l4_bytes[VS_L4_OTHER] += len;
		return 1;
	}
	return classify_ip6_v6(skb, p, end, c, len, dir, l3);
}

static __always_inline int is_vlan(__u16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* IPv4 or IPv6 (EtherType proto, network order) at the constant offset l3 behind tags:
 * what classify_ip4() or classify_ip6() returns, or -1 when proto is neither. */
static __always_inline int classify_ip_at(struct __sk_buff *skb, __u8 *p, void *end,
					  struct vs_net_counters *c, __u32 len, __u32 dir,
					  __u16 proto, __u32 l3)
{
	if (proto == bpf_htons(ETH_P_IP))
		return classify_ip4(skb, p, end, c, len, dir, l3);
	if (proto == bpf_htons(ETH_P_IPV6))
		return classify_ip6(skb, p, end, c, len, dir, l3);
	return -1;
}

/* The word of bytes 12-19 (little-endian, as classify() loads it) masked to what tells
 * the common combinations apart: the EtherType and the IP version nibble (untagged); or
 * an 802.1Q TPID, then EtherType IPv4 and version and IHL byte 0x45 (one tag; the same
 * test on bytes 16-23 finds the inner tag of QinQ). */
#define W_TYPE_VERSION_MASK 0xf0ffffULL
#define W_IP4 0x400008ULL
#define W_IP6 0x60dd86ULL
#define W_VLAN_IP45_MASK 0x00ffffff0000ffffULL
#define W_VLAN_IP45 0x0045000800000081ULL

/* Every frame the one-word tests in classify() leave: untagged non-IP frames, and IP
 * behind one VLAN tag (802.1Q or 802.1ad) or two (QinQ), each at its constant offset;
 * 0 where classify_slow() decides. proto: the EtherType (network order); the caller
 * checked the first CLASSIFY_LINEAR bytes. */
static __always_inline int classify_tagged(struct __sk_buff *skb, __u8 *p, void *end,
					   struct vs_net_counters *c, __u32 len, __u32 dir,
					   __u16 proto)
{
	if (is_vlan(proto)) {
		proto = *(__u16 *)(p + 16);
		int done = classify_ip_at(skb, p, end, c, len, dir, proto, ETH_HLEN + 4);
		if (done >= 0)
			return done;
		if (is_vlan(proto)) {
			done = classify_ip_at(skb, p, end, c, len, dir, *(__u16 *)(p + 20),
					      ETH_HLEN + 8);
			if (done >= 0)
				return done;
		}
	}
	c->l4_bytes[VS_L4_OTHER] += len; /* ARP and every other non-IP frame */
	return 1;
}

/* Every frame whose headers are in the linear data is classified straight from it,
 * with constant offsets for each combination of VLAN tags (none, one, two) and IP
 * version; only IPv4 options put the L4 header at a variable offset. The rest
 * (extension headers, short or paged frames) takes classify_slow(), which copies. */
static __always_inline void classify(struct __sk_buff *skb, struct vs_net_counters *c, __u32 len,
				     __u32 dir)
{
#ifdef VS_TEST_GENERAL_PATH
	/* Only in the build the fast paths' differential test compares this one with
	 * (tests/CMakeLists.txt): every frame through the general path. */
	classify_slow(skb, c, len, dir, 0);
	return;
#endif
	__u8 *p = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	/* Written so that the common frames' path falls through: the BPF backend lays blocks
	 * out in source order, and each taken jump costs about as much as several
	 * instructions here (measured: a VLAN frame through the general dispatch cost
	 * ~3 ns more than through the one-word test below). */
	if (likely((void *)(p + CLASSIFY_LINEAR) <= end)) {
		/* multicast and broadcast frames take a path placed after the return */
		if (unlikely(p[0] & 1))
			goto l2_group;
l2_counted:;
		/* Bytes 12-19: EtherType, and the IP version and IHL byte (untagged); or a tag's
		 * TPID and TCI, then EtherType and that byte (one 802.1Q tag), or the inner tag's
		 * TPID (QinQ). Untagged IPv4 with IHL 5 falls through; each other common
		 * combination has a one-word test of its own, all in a row, and jumps to its
		 * constant-offset code when it matches (one taken jump on each of their paths,
		 * not one per test before theirs). The constants are the bytes as a
		 * little-endian load sees them. */
		__u64 w = *(__u64 *)(p + 12);
		int done;
		if (likely((w & 0xffffff) == 0x450008)) { /* IPv4, IHL 5 */
			done = classify_ip4_5(skb, p, end, c, len, dir, ETH_HLEN);
			goto out;
		}
		__u64 type_version = w & W_TYPE_VERSION_MASK;
		if (type_version == W_IP6)
			goto ip6;
		if (type_version == W_IP4) /* with options (or IHL < 5) */
			goto ip4_opt;
		/* QinQ: an outer tag (802.1ad, the standard one, tested first; or 802.1Q), then
		 * bytes 16-23 as one 802.1Q tag's bytes 12-19 */
		if ((__u16)w == bpf_htons(ETH_P_8021AD))
			goto qinq;
		if ((w & W_VLAN_IP45_MASK) == W_VLAN_IP45)
			goto vlan_ip4_5;
		if ((__u16)w == bpf_htons(ETH_P_8021Q))
			goto qinq;
other:
		/* reads the frame anew: without the barrier the compiler prepares values for
		 * this rare path inside the QinQ test, on the QinQ frames' path */
		asm volatile("" ::: "memory");
		done = classify_tagged(skb, p, end, c, len, dir, (__u16)w);
		goto out;
qinq:
		if ((*(__u64 *)(p + 16) & W_VLAN_IP45_MASK) != W_VLAN_IP45)
			goto other;
		done = classify_ip4_5(skb, p, end, c, len, dir, ETH_HLEN + 8);
		goto out;
ip6:
		done = classify_ip6_v6(skb, p, end, c, len, dir, ETH_HLEN);
		goto out;
vlan_ip4_5:
		done = classify_ip4_5(skb, p, end, c, len, dir, ETH_HLEN + 4);
		goto out;
ip4_opt:
		done = classify_ip4_opt(skb, p, end, c, len, dir, ETH_HLEN, (w >> 14) & 0x3c);
out:
		if (unlikely(!done))
			classify_slow(skb, c, len, dir, 1);
		return;
l2_group:
		count_l2_group(c, p);
		goto l2_counted;
	}
	/* ARP (42 B from a guest: virtio does not pad) and short frames */
	if ((void *)(p + ETH_HLEN) <= end && *(__u16 *)(p + 12) == bpf_htons(ETH_P_ARP)) {
		if (p[0] & 1)
			count_l2_group(c, p);
		c->l4_bytes[VS_L4_OTHER] += len;
		return;
	}
	classify_slow(skb, c, len, dir, 0);
}

static __always_inline int count(struct __sk_buff *skb, __u32 dir)
{
	__u32 ifindex = skb->ifindex;
#ifdef VS_TEST_VARIANT
	/* Only in the build the upgrade test switches to (tests/CMakeLists.txt): a program that
	 * differs from this one (another tag) and counts the same, as a new release would. */
	if (skb->priority == 0x76737661)
		return VS_CONTINUE;
#endif
	/* The array's own bound check (inlined) sends an ifindex beyond it to the hash, on
	 * a path placed after the return, so that a found slot falls through. */
	__u32 *slot = bpf_map_lookup_elem(&if_slot, &ifindex);
	if (unlikely(!slot))
		goto far;
found:;
	/* 0 (not monitored) wraps to an index beyond net_stats: its lookup fails */
	__u32 idx = *slot - 1;
	struct vs_dev_counters *dev = bpf_map_lookup_elem(&net_stats, &idx);
	if (unlikely(!dev))
		return VS_CONTINUE;
	struct vs_net_counters *c = &dev->dir[dir];
	__u32 len = skb->len;
	c->bytes += len;
	c->packets++;
	classify(skb, c, len, dir);
	return VS_CONTINUE;
far:
	if (ifindex < VS_IFINDEX_DIRECT_MAX)
		return VS_CONTINUE;
	slot = far_slot(ifindex);
	if (!slot)
		return VS_CONTINUE;
	goto found;
}

SEC("tc")
int vs_tc_ingress(struct __sk_buff *skb)
{
	return count(skb, VS_DIR_INGRESS);
}

SEC("tc")
int vs_tc_egress(struct __sk_buff *skb)
{
	return count(skb, VS_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
