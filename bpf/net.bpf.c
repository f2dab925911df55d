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
 * data, or null where the caller copies headers (classify_slow). frag: nonzero for an
 * IPv4 fragment other than the first, which carries no L4 header (the fast path tests
 * it only here, once the frame looks interesting: data frames skip that test). */
static __always_inline void service_tcp(struct __sk_buff *skb, __u32 dir, __u32 v6, __u32 l3,
					__u32 l4, __u8 flags, __u8 doff, __u8 *p, void *end,
					__u32 len, __u32 frag)
{
	if (flags & (TCP_FLAG_SYN | TCP_FLAG_RST)) {
		if (frag)
			return;
		vs_service(skb,
			   (dir == VS_DIR_EGRESS ? VS_SVC_EGRESS : 0) | (v6 ? VS_SVC_IPV6 : 0) |
				   IPPROTO_TCP << 8,
			   l3, l4);
		return;
	}
	if (dir == VS_DIR_EGRESS)
		return;
	__u32 payoff = l4 + (doff >> 4) * 4;
	if (len < payoff + 10)
		return;
	__u8 buf[10];
	__u8 *h;
	if (p && (void *)(p + payoff + 10) <= end)
		h = p + payoff;
	else if (!bpf_skb_load_bytes(skb, payoff, buf, sizeof(buf)))
		h = buf;
	else
		return;
	if (is_http_status(h) && !frag)
		vs_service(skb, VS_SVC_HTTP | (__u32)h[9] << 16, l3, l4);
}

static __always_inline void service_udp(struct __sk_buff *skb, __u32 dir, __u32 v6, __u32 l3,
					__u32 l4, __u8 port_hi, __u8 port_lo, __u32 frag)
{
	/* port: the destination port towards the VM, the source port from it */
	if (port_hi != 0 || port_lo != 53 || frag)
		return;
	vs_service(skb,
		   (dir == VS_DIR_EGRESS ? VS_SVC_EGRESS : 0) | (v6 ? VS_SVC_IPV6 : 0) |
			   IPPROTO_UDP << 8,
		   l3, l4);
}

/* L2 multicast or broadcast (the group bit is set). */
static __always_inline void count_l2_group(struct vs_net_counters *c, const __u8 *eth)
{
	if ((eth[0] & eth[1] & eth[2] & eth[3] & eth[4] & eth[5]) == 0xff)
		c->bcast_packets++;
	else
		c->mcast_packets++;
}

/* Bytes by the L4 protocol of an IP frame whose protocol matches its IP version
 * (classify_medium, classify_slow: ICMP over IPv6 or ICMPv6 over IPv4 arrive as OTHER). */
static __always_inline void count_l4(struct vs_net_counters *c, __u8 l4proto, __u32 len, int syn)
{
	switch (l4proto) {
	case IPPROTO_TCP:
		c->l4_bytes[VS_L4_TCP] += len;
		c->tcp_syns += syn;
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

static __always_inline void classify_slow(struct __sk_buff *skb, struct vs_net_counters *c,
					  __u32 len, __u32 dir)
{
	__u8 buf[40];
	__u8 *eth = header(skb, 0, buf, ETH_HLEN);
	if (!eth) {
		c->l4_bytes[VS_L4_OTHER] += len;
		return;
	}
	if (eth[0] & 1)
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

	int syn = 0;
	if (l4proto == IPPROTO_TCP) {
		__u8 *tcp = header(skb, l4off + 12, buf, 2);
		syn = tcp && (tcp[1] & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
		if (tcp)
			service_tcp(skb, dir, proto == ETH_P_IPV6, off, l4off, tcp[1], tcp[0], 0, 0,
				    len, 0);
	} else if (l4proto == IPPROTO_UDP) {
		__u8 *udp = header(skb, l4off, buf, 4);
		if (udp)
			service_udp(skb, dir, proto == ETH_P_IPV6, off, l4off,
				    udp[dir == VS_DIR_EGRESS ? 2 : 0],
				    udp[dir == VS_DIR_EGRESS ? 3 : 1], 0);
	}
	count_l4(c, l4proto, len, syn);
	return;
other:
	c->l4_bytes[VS_L4_OTHER] += len;
}

/* Frames one step from the fast path, read straight from the linear data: IPv4 with
 * options, behind one or two VLAN tags, and IPv6 carrying TCP, UDP or ICMPv6 without
 * extension headers. Returns 0, having counted nothing, for every other frame (and for
 * fragments or headers beyond the linear data): classify_slow() decides those. Same
 * rules as classify_slow(), without its byte copies and header walks. */
static __always_inline int classify_medium(struct __sk_buff *skb, __u8 *p, void *end,
					   struct vs_net_counters *c, __u32 len, __u32 dir)
{
	if ((void *)(p + ETH_HLEN) > end)
		return 0;
	__u16 proto = (__u16)p[12] << 8 | p[13];
	__u32 l3 = ETH_HLEN;
	for (int i = 0; i < 2 && (proto == ETH_P_8021Q || proto == ETH_P_8021AD); i++) {
		if ((void *)(p + l3 + 4) > end)
			return 0;
		proto = (__u16)p[l3 + 2] << 8 | p[l3 + 3];
		l3 += 4;
	}
	__u8 l4proto;
	__u32 l4off;
	if (proto == ETH_P_IP) {
		if ((void *)(p + l3 + 20) > end)
			return 0;
		__u8 vihl = p[l3];
		if ((__u8)(vihl - 0x45) > 0x0a || (p[l3 + 6] & 0x1f) | p[l3 + 7])
			return 0; /* not IPv4 with a whole header, or a fragment */
		l4proto = p[l3 + 9];
		if (l4proto == IPPROTO_ICMPV6_)
			l4proto = IPPROTO_RAW; /* not ICMP over IPv4: OTHER */
		l4off = l3 + (vihl & 0xf) * 4;
	} else if (proto == ETH_P_IPV6) {
		if ((void *)(p + l3 + 40) > end || (p[l3] & 0xf0) != 0x60)
			return 0;
		l4proto = p[l3 + 6];
		if (l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP && l4proto != IPPROTO_ICMPV6_)
			return 0; /* extension headers, ICMP over IPv6, ...: the slow path */
		l4off = l3 + 40;
	} else {
		return 0;
	}
	int syn = 0;
	if (l4proto == IPPROTO_TCP) {
		__u8 *tcp = p + l4off;
		if ((void *)(tcp + 14) > end)
			return 0;
		syn = (tcp[13] & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
		service_tcp(skb, dir, proto == ETH_P_IPV6, l3, l4off, tcp[13], tcp[12], p, end, len,
			    0);
	} else if (l4proto == IPPROTO_UDP) {
		__u8 *udp = p + l4off;
		if ((void *)(udp + 4) > end)
			return 0;
		service_udp(skb, dir, proto == ETH_P_IPV6, l3, l4off,
			    udp[dir == VS_DIR_EGRESS ? 2 : 0], udp[dir == VS_DIR_EGRESS ? 3 : 1],
			    0);
	}
	if (p[0] & 1)
		count_l2_group(c, p);
	count_l4(c, l4proto, len, syn);
	return 1;
}

/* Out of line on purpose: with both lookups at one call site the verifier could not
 * inline the array lookup (two maps behind one call), costing ~15 ns per packet. */
static __noinline __u32 *far_slot(__u32 ifindex)
{
	return bpf_map_lookup_elem(&if_slot_far, &ifindex);
}

/* The common frames, IPv4 without options and ARP, are classified with one bounds
 * check; IPv4 with options or VLAN tags and plain IPv6 by classify_medium(); everything
 * else (extension headers, fragments, short, malformed or paged frames) takes the
 * general path. */
static __always_inline void classify(struct __sk_buff *skb, struct vs_net_counters *c, __u32 len,
				     __u32 dir)
{
	__u8 *p = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if ((void *)(p + 48) > end || p[12] != 0x08 || p[13] != 0x00 || p[14] != 0x45) {
		if ((void *)(p + 14) <= end && p[12] == 0x08 && p[13] == 0x06) { /* ARP */
			if (p[0] & 1)
				count_l2_group(c, p);
			c->l4_bytes[VS_L4_OTHER] += len;
			return;
		}
		if (!classify_medium(skb, p, end, c, len, dir))
			classify_slow(skb, c, len, dir);
		return;
	}
	if (p[0] & 1)
		count_l2_group(c, p);
	switch (p[23]) {
	case IPPROTO_TCP:
		c->l4_bytes[VS_L4_TCP] += len;
		/* flags at 14 + 20 + 13; only the first fragment carries the TCP header */
		if ((p[47] & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
		    ((p[20] & 0x1f) | p[21]) == 0)
			c->tcp_syns++;
		service_tcp(skb, dir, 0, ETH_HLEN, 34, p[47], p[46], p, end, len,
			    (p[20] & 0x1f) | p[21]);
		return;
	case IPPROTO_UDP:
		c->l4_bytes[VS_L4_UDP] += len;
		service_udp(skb, dir, 0, ETH_HLEN, 34, p[dir == VS_DIR_EGRESS ? 36 : 34],
			    p[dir == VS_DIR_EGRESS ? 37 : 35], (p[20] & 0x1f) | p[21]);
		return;
	case IPPROTO_ICMP:
		c->l4_bytes[VS_L4_ICMP] += len;
		return;
	}
	c->l4_bytes[VS_L4_OTHER] += len;
}

static __always_inline int count(struct __sk_buff *skb, __u32 dir)
{
	__u32 ifindex = skb->ifindex;
	__u32 *slot;
#ifdef VS_TEST_VARIANT
	/* Only in the build the upgrade test switches to (tests/CMakeLists.txt): a program that
	 * differs from this one (another tag) and counts the same, as a new release would. */
	if (skb->priority == 0x76737661)
		return VS_CONTINUE;
#endif
	if (ifindex < VS_IFINDEX_DIRECT_MAX)
		slot = bpf_map_lookup_elem(&if_slot, &ifindex);
	else
		slot = far_slot(ifindex);
	if (!slot || *slot == 0)
		return VS_CONTINUE;
	__u32 idx = *slot - 1;
	struct vs_dev_counters *dev = bpf_map_lookup_elem(&net_stats, &idx);
	if (!dev)
		return VS_CONTINUE;
	struct vs_net_counters *c = &dev->dir[dir];
	__u32 len = skb->len;
	c->bytes += len;
	c->packets++;
	classify(skb, c, len, dir);
	return VS_CONTINUE;
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
