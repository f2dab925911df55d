/* Service health seen on a VM tap (issue 12, the vm_service measurement): the maps and
 * the out-of-line handler that net.bpf.c's classification calls for the few frames that
 * matter to it, once it knows their L4 header (see service_hook() there). Kernel side
 * only: included by net.bpf.c after vmlinux.h and vmscope.h.
 *
 * On a tap, egress is host -> VM and ingress VM -> host. The VM serves: a SYN on egress
 * opens a VS_ROLE_SERVER entry, its SYN-ACK or RST on ingress closes it. The VM connects
 * out: a SYN on ingress opens a VS_ROLE_CLIENT entry, the SYN-ACK or RST on egress
 * closes it. A DNS query to port 53 on egress opens a VS_ROLE_DNS entry, the response
 * from port 53 on ingress closes it. Entries never answered are expired by the per-tick
 * sweep in net_sum.bpf.c. */
#ifndef VMSCOPE_BPF_SERVICE_H
#define VMSCOPE_BPF_SERVICE_H

/* Counters per slot, per CPU. Apart from net_stats so that plain data frames, the vast
 * majority, never touch it. Sized like net_stats (one entry per slot). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct vs_service_counters);
} service_stats SEC(".maps");

/* Slots whose device is a VM tap (value 1), written by user space with the slot: the
 * service counters are the VM's, so a bridge (host traffic) has none. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} service_slots SEC(".maps");

/* Open handshakes and DNS queries (bpf/vmscope.h: struct vs_pending_key). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VS_SERVICE_PENDING_MAX);
	__type(key, struct vs_pending_key);
	__type(value, struct vs_pending);
} service_pending SEC(".maps");

#define VS_SVC_EGRESS 1 /* `what` of vs_service(): bit 0 the direction, */
#define VS_SVC_IPV6 2 /* bit 1 the IP version, bits 8-15 the L4 protocol, */
#define VS_SVC_HTTP 4 /* bit 2: an HTTP status line from the VM; bits 16-23 its first digit */
#define TCP_FLAG_RST 0x04
#define DNS_PORT_BE 0x3500 /* 53 in network order, as read into a __u16 */

/* Whether the TCP handshake of key k was answered within the sweep age. */
static __always_inline int pending_answered(struct vs_pending_key *k)
{
	k->role |= VS_ROLE_ANSWERED;
	int answered = bpf_map_lookup_elem(&service_pending, k) != 0;
	k->role &= ~VS_ROLE_ANSWERED;
	return answered;
}

/* Starts waiting for an answer: 1 if this is the first SYN or query of key (a
 * retransmit finds its entry, open or answered, and keeps the first one's time). */
static __always_inline int pending_open(struct vs_pending_key *k)
{
	/* Look first: an LRU update takes a free node before it finds that the key exists
	 * (a retransmit then costs ~10x this lookup). */
	if (bpf_map_lookup_elem(&service_pending, k))
		return 0;
	if (k->role != VS_ROLE_DNS && pending_answered(k))
		return 0;
	struct vs_pending v = { .first_ns = bpf_ktime_get_ns() };
	return bpf_map_update_elem(&service_pending, k, &v, BPF_NOEXIST) == 0;
}

/* Ends the wait: microseconds since the first SYN or query, or -1 if nothing waited
 * (or another CPU, or the sweep, closed it first: only the one whose delete succeeds
 * counts it). `keep`: a TCP handshake leaves its answered entry (VS_ROLE_ANSWERED); a
 * DNS query does not (a repeated query is a new one to answer). */
static __always_inline __s64 pending_close(struct vs_pending_key *k, int keep)
{
	struct vs_pending *v = bpf_map_lookup_elem(&service_pending, k);
	if (!v)
		return -1;
	struct vs_pending first = *v;
	if (bpf_map_delete_elem(&service_pending, k))
		return -1;
	if (keep) {
		k->role |= VS_ROLE_ANSWERED;
		bpf_map_update_elem(&service_pending, k, &first, BPF_ANY);
		k->role &= ~VS_ROLE_ANSWERED;
	}
	__u64 now = bpf_ktime_get_ns();
	return now > first.first_ns ? (__s64)((now - first.first_ns) / 1000) : 0;
}

static __always_inline void count_handshake(struct vs_service_counters *c, __u64 us)
{
	c->handshake_count++;
	c->handshake_sum_us += us;
	/* cumulative buckets: a handshake is in every bucket it fits */
	c->handshake_le_100us += us <= 100;
	c->handshake_le_1ms += us <= 1000;
	c->handshake_le_10ms += us <= 10000;
	c->handshake_le_100ms += us <= 100000;
	c->handshake_le_1s += us <= 1000000;
}

static __always_inline void count_rcode(struct vs_service_counters *c, __u8 rcode)
{
	switch (rcode) {
	case 0:
		c->dns_noerror++;
		return;
	case 2:
		c->dns_servfail++;
		return;
	case 3:
		c->dns_nxdomain++;
		return;
	case 5:
		c->dns_refused++;
		return;
	}
	c->dns_other++;
}

/* Fills the key's addresses and ports from the frame's source and destination; `vm_is_src`
 * and the role say which of them is the client. */
static __always_inline void key_endpoints(struct vs_pending_key *k, const __u8 *src,
					  const __u8 *dst, __u16 sport, __u16 dport,
					  int src_is_client)
{
	if (src_is_client) {
		__builtin_memcpy(k->client_addr, src, 16);
		__builtin_memcpy(k->server_addr, dst, 16);
		k->client_port = sport;
		k->server_port = dport;
	} else {
		__builtin_memcpy(k->client_addr, dst, 16);
		__builtin_memcpy(k->server_addr, src, 16);
		k->client_port = dport;
		k->server_port = sport;
	}
}

/* A SYN or RST segment (the hooks send no others here). */
static __always_inline void tcp_segment(struct vs_service_counters *c, struct vs_pending_key *k,
					const __u8 *src, const __u8 *dst, const __u8 *tcp,
					int egress)
{
	__u16 sport = *(__u16 *)&tcp[0], dport = *(__u16 *)&tcp[2];
	__u8 flags = tcp[13];
	int syn = flags & TCP_FLAG_SYN, ack = flags & TCP_FLAG_ACK;
	__s64 us;
	if (flags & TCP_FLAG_RST) {
		/* from the VM: it refuses a connection to it; to the VM: its peer refuses */
		if (!egress)
			c->tcp_rst_out++;
		k->role = egress ? VS_ROLE_CLIENT : VS_ROLE_SERVER;
		key_endpoints(k, src, dst, sport, dport, 0);
		if (pending_close(k, 1) >= 0) {
			if (egress)
				c->tcp_connect_refused++;
			else
				c->tcp_refused++;
		}
		return;
	}
	if (!syn)
		return;
	/* SYN to the VM or SYN-ACK from it: the VM serves; else it is the client */
	k->role = (egress != 0) == !ack ? VS_ROLE_SERVER : VS_ROLE_CLIENT;
	key_endpoints(k, src, dst, sport, dport, !ack);
	if (!ack) {
		if (!pending_open(k))
			return;
		if (egress)
			c->tcp_syn_in++;
		else
			c->tcp_connect_out++;
		return;
	}
	us = pending_close(k, 1);
	if (us < 0)
		return;
	if (egress) {
		c->tcp_connect_ok++;
		c->connect_count++;
		c->connect_sum_us += us;
	} else {
		c->tcp_accepted++;
		count_handshake(c, us);
	}
}

/* "HTTP/1.x " then the status code's first digit: h holds at least 10 bytes, in the
 * linear data or 4-byte aligned. Word compares: every TCP segment from a VM takes the
 * first one. */
static __always_inline int is_http_status(const __u8 *h)
{
	return *(__u32 *)h == bpf_htonl(0x48545450) /* "HTTP" */ &&
	       (*(__u32 *)(h + 4) & bpf_htonl(0xffffff00)) == bpf_htonl(0x2f312e00) /* "/1." */ &&
	       h[8] == ' ';
}

static __always_inline void count_http(struct vs_service_counters *c, __u8 digit)
{
	switch (digit) {
	case '1':
		c->http_1xx++;
		return;
	case '2':
		c->http_2xx++;
		return;
	case '3':
		c->http_3xx++;
		return;
	case '4':
		c->http_4xx++;
		return;
	case '5':
		c->http_5xx++;
		return;
	}
}

/* DNS over UDP: a query to the VM's port 53 (egress, QR 0) or a response from it
 * (ingress, QR 1). u: the UDP header and the DNS header's first 4 bytes. */
static __always_inline void dns_datagram(struct vs_service_counters *c, struct vs_pending_key *k,
					 const __u8 *src, const __u8 *dst, const __u8 *u,
					 int egress)
{
	__u16 sport = *(__u16 *)&u[0], dport = *(__u16 *)&u[2];
	int qr = u[10] & 0x80;
	k->role = VS_ROLE_DNS;
	if (egress) {
		if (dport != DNS_PORT_BE || qr)
			return;
		__builtin_memcpy(k->client_addr, src, 16);
		k->client_port = sport;
		k->server_port = *(__u16 *)&u[8]; /* the DNS id */
		pending_open(k);
		return;
	}
	if (sport != DNS_PORT_BE || !qr)
		return;
	c->dns_responses++;
	count_rcode(c, u[11] & 0xf);
	__builtin_memcpy(k->client_addr, dst, 16);
	k->client_port = dport;
	k->server_port = *(__u16 *)&u[8];
	__s64 us = pending_close(k, 0);
	if (us >= 0) {
		c->dns_latency_count++;
		c->dns_latency_sum_us += us;
	}
}

/* bpf_skb_load_bytes(), but straight from the linear data where the bytes are there: a
 * helper call costs more than these few loads (word loads: the packet need not be
 * aligned on the hosts BPF runs unaligned loads on, and the verifier allows them
 * unless asked for strict alignment). off <= 1024 bounds the pointer arithmetic for
 * the verifier. `to`: 4-byte aligned; len: a constant, even. */
static __always_inline int load_bytes(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	__u8 *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (off <= 1024 && (void *)(data + off + len) <= end) {
		__u8 *from = data + off;
		for (__u32 i = 0; i + 4 <= len; i += 4)
			*(__u32 *)(to + i) = *(__u32 *)(from + i);
		if (len & 2)
			*(__u16 *)(to + (len & ~3)) = *(__u16 *)(from + (len & ~3));
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* The service counters' handler for one frame of the device's slot whose L4 header (TCP or UDP) is at
 * l4off and IP header at l3off; `what` as VS_SVC_*. Called only for frames the
 * classification found worth it (service_tcp(), service_udp() in net.bpf.c); a global function, so the
 * verifier checks it once, not on every classification path. Reads what it needs by
 * copying: these frames are few. Returns 0. */
__noinline int vs_service(struct __sk_buff *skb, __u32 what, __u32 l3off, __u32 l4off)
{
	/* The slot again, rather than passed down the classification: keeping it live there
	 * cost every data frame a register. */
	__u32 ifindex = skb->ifindex;
	__u32 *idx;
	if (ifindex < VS_IFINDEX_DIRECT_MAX)
		idx = bpf_map_lookup_elem(&if_slot, &ifindex);
	else
		idx = far_slot(ifindex); /* as count(): keeps the array lookup inlined */
	if (!idx || *idx == 0)
		return 0;
	__u32 slot = *idx - 1;
	__u32 *tap = bpf_map_lookup_elem(&service_slots, &slot);
	if (!tap || !*tap)
		return 0;
	struct vs_service_counters *c = bpf_map_lookup_elem(&service_stats, &slot);
	if (!c)
		return 0;
	if (what & VS_SVC_HTTP) { /* the hook read the status line already */
		count_http(c, (__u8)(what >> 16));
		return 0;
	}
	int egress = what & VS_SVC_EGRESS;
	__u8 src[16] __attribute__((aligned(8))) = {}, dst[16] __attribute__((aligned(8))) = {};
	if (what & VS_SVC_IPV6) {
		if (load_bytes(skb, l3off + 8, src, 16) || load_bytes(skb, l3off + 24, dst, 16))
			return 0;
	} else {
		if (load_bytes(skb, l3off + 12, src, 4) || load_bytes(skb, l3off + 16, dst, 4))
			return 0;
	}
	struct vs_pending_key k;
	__builtin_memset(&k, 0, sizeof(k));
	k.slot = slot;
	k.family = what & VS_SVC_IPV6 ? 6 : 4;
	__u8 l4[16] __attribute__((aligned(8)));
	if ((what >> 8) == IPPROTO_TCP) {
		if (load_bytes(skb, l4off, l4, 14))
			return 0;
		tcp_segment(c, &k, src, dst, l4, egress);
	} else {
		if (load_bytes(skb, l4off, l4, 12))
			return 0;
		dns_datagram(c, &k, src, dst, l4, egress);
	}
	return 0;
}

#endif /* VMSCOPE_BPF_SERVICE_H */
