/* vmscope kernel/user contract: every struct and constant both sides share.
 * Plain C, fixed-width types, explicit padding, no logic. The user side checks the
 * layout with static_asserts (user/drain/contract_check.h), so drift breaks the build. */
#ifndef VMSCOPE_BPF_VMSCOPE_H
#define VMSCOPE_BPF_VMSCOPE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Interfaces are counted in slots: user space gives each monitored device a slot and
 * writes slot+1 into if_slot[ifindex] (0 = not monitored). Slot indirection keeps the
 * datapath on two inlined array lookups instead of a hash lookup per packet. */
#define VS_MAX_SLOTS 8192 /* monitored devices (taps + bridges) */
#define VS_IFINDEX_DIRECT_MAX \
  262144 /* ifindex below this: array if_slot; above: hash if_slot_far */

/* Direction as seen by the device: ingress = frames the device receives from its
 * peer (on a tap: what the VM sent), egress = frames sent to the peer (to the VM). */
enum vs_dir {
  VS_DIR_INGRESS = 0,
  VS_DIR_EGRESS = 1,
  VS_DIR_COUNT = 2,
};

/* net_stats index = slot * VS_DIR_COUNT + dir. */

/* L4 buckets: bytes of whole frames, by the IP protocol they carry. */
enum vs_l4 {
  VS_L4_TCP = 0,
  VS_L4_UDP = 1,
  VS_L4_ICMP = 2,  /* ICMP and ICMPv6 */
  VS_L4_OTHER = 3, /* other IP protocols and non-IP frames (ARP, ...) */
  VS_L4_COUNT = 4,
};

/* Per-CPU counters of one device in one direction. Only ever incremented by the
 * datapath; user space zeroes a slot before handing it to a new device. */
struct vs_net_counters {
  __u64 bytes; /* skb->len: the whole L2 frame, as the device's own counters */
  __u64 packets;
  __u64 mcast_packets; /* L2 multicast, broadcast excluded */
  __u64 bcast_packets; /* L2 broadcast */
  __u64 l4_bytes[VS_L4_COUNT];
  __u64 tcp_syns; /* TCP SYN without ACK: new connections opened in this direction */
};

#endif /* VMSCOPE_BPF_VMSCOPE_H */
