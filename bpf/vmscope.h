/* vmscope kernel/user contract: every struct and constant both sides share.
 * Plain C, fixed-width types, explicit padding, no logic beyond the counter lists'
 * field-read expressions (see "counter lists"). The user side checks the
 * layout with static_asserts (user/drain/contract_check.h), so drift breaks the build. */
#ifndef VMSCOPE_BPF_VMSCOPE_H
#define VMSCOPE_BPF_VMSCOPE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Interfaces are counted in slots: user space gives each monitored device a slot and
 * writes slot+1 into if_slot[ifindex] (0 = not monitored). Slot indirection keeps the
 * datapath on two inlined array lookups instead of a hash lookup per packet.
 *
 * How many slots there are is chosen at run time, once, before the objects load: from
 * the host's link count and possible CPUs, or the net_slots option (user/drain/
 * slot_table.h). A map declared with max_entries VS_MAX_SLOTS is slot-indexed: user
 * space sets every such map of an object to that one value before loading it
 * (size_slot_maps), so a new per-slot map needs nothing but this declaration.
 * VS_MAX_SLOTS itself is only the upper bound of the choice; the declared size is never
 * loaded. VS_MIN_SLOTS is the lower bound. */
#define VS_MAX_SLOTS 1048576
#define VS_MIN_SLOTS 64
#define VS_IFINDEX_DIRECT_MAX \
	262144 /* ifindex below this: array if_slot; above: hash if_slot_far */

/* Possible CPUs vmscope supports. It bounds the in-kernel per-CPU loops (net_sum.bpf.c's
 * sums, task_sample.h's percpu_counter sums and their table of per-CPU offsets), which
 * stop at nr_cpus, the possible CPUs user space sets before load. User space refuses to
 * load on a host with more (user/drain/cpu_limit.h): counting only some CPUs would be
 * silently wrong. The loops' cost, and the verifier's, follow nr_cpus, not this bound;
 * raising it costs 8 bytes of offset table per CPU in each task sampler object. */
#define VS_MAX_CPUS 4096

/* Direction as seen by the device: ingress = frames the device receives from its
 * peer (on a tap: what the VM sent), egress = frames sent to the peer (to the VM). */
enum vs_dir {
	VS_DIR_INGRESS = 0,
	VS_DIR_EGRESS = 1,
	VS_DIR_COUNT = 2,
};

/* L4 buckets: bytes of whole frames, by the IP protocol they carry. */
enum vs_l4 {
	VS_L4_TCP = 0,
	VS_L4_UDP = 1,
	VS_L4_ICMP = 2, /* ICMP and ICMPv6 */
	VS_L4_OTHER = 3, /* other IP protocols and non-IP frames (ARP, ...) */
	VS_L4_COUNT = 4,
};

/* ---- counter lists ----
 * Each counter list is declared once, here, as an X-macro: LIST(X) expands X(...) once per
 * counter, in struct order. The struct is generated from it, and every place that reads,
 * copies or sums the counters expands the list instead of naming the fields: the kernel
 * reads and sums (proc_common.h, tasks_walk.bpf.c, proc.bpf.c, net_sum.bpf.c) and the user
 * sums (user/drain/counter_sums.h). Adding a counter is one line in its list; the build
 * then stops (static_assert) at each encoder, which maps counters to the line-protocol
 * schema by hand: the schema's names are fixed and irregular (albatross names such as
 * `maxflt` for major faults, values converted to seconds, constant fields interleaved, a
 * list split over several measurements), so a name column here would not carry it. A list
 * whose fields a measurement names as they are (issue 12's vm_io: read_bytes, ...) can be
 * encoded by expanding the list with #field. Works in BPF C and in C++. */

#define VS_U64_FIELD_(field) __u64 field;
#define VS_U64_ARRAY_(field, n) __u64 field[n];
#define VS_COUNT_ONE_(...) +1
#define VS_COUNT_N_(field, n) +(n)

/* Counters of one device in one direction (struct vs_net_counters): X(field) for a __u64,
 * XA(field, n) for a __u64[n]. */
#define VS_NET_COUNTERS(X, XA)                                                                \
	X(bytes) /* skb->len: the whole L2 frame, as the device's own counters */             \
	X(packets)                                                                            \
	X(mcast_packets) /* L2 multicast, broadcast excluded */                               \
	X(bcast_packets) /* L2 broadcast */                                                   \
	XA(l4_bytes, VS_L4_COUNT) /* bytes of whole frames by the IP protocol (enum vs_l4) */ \
	X(tcp_syns) /* TCP SYN without ACK: new connections opened in this direction */

/* Per-CPU counters of one device in one direction. Only ever incremented by the
 * datapath; user space zeroes a slot before handing it to a new device. */
struct vs_net_counters {
	VS_NET_COUNTERS(VS_U64_FIELD_, VS_U64_ARRAY_)
};
enum { VS_NET_COUNTER_WORDS = 0 VS_NET_COUNTERS(VS_COUNT_ONE_, VS_COUNT_N_) };

/* net_stats value (index = slot): both directions of one device in one entry, so the
 * drain copies one element per device. */
struct vs_dev_counters {
	struct vs_net_counters dir[VS_DIR_COUNT];
};

/* ---- service health seen on a VM tap (issue 12: the vm_service measurement) ----
 * Per tap, cumulative, only ever incremented in the datapath (or by the per-tick sweep
 * that expires unanswered state). Named exactly as the vm_service line-protocol fields, so
 * the encoder expands the list with #field. Buckets are cumulative (le = "at most"), as
 * Prometheus histograms: a 50 us handshake increments every handshake_le_* field. Times
 * are microseconds. "Server" means the VM answers; "client" means the VM connects out. */
#define VS_SERVICE_COUNTERS(X)                                                                 \
	/* TCP, the VM as server */                                                            \
	X(tcp_syn_in) /* distinct connection attempts to the VM (a retransmitted SYN: once) */ \
	X(tcp_accepted) /* answered with a SYN-ACK */                                          \
	X(tcp_refused) /* answered with a RST */                                               \
	X(tcp_unanswered) /* neither within 3 s */                                             \
	X(tcp_rst_out) /* every RST the VM sent */                                             \
	X(handshake_count) /* SYN out of the tap -> the VM's SYN-ACK into it */                \
	X(handshake_sum_us)                                                                    \
	X(handshake_le_100us)                                                                  \
	X(handshake_le_1ms)                                                                    \
	X(handshake_le_10ms)                                                                   \
	X(handshake_le_100ms)                                                                  \
	X(handshake_le_1s)                                                                     \
	/* TCP, the VM as client */                                                            \
	X(tcp_connect_out)                                                                     \
	X(tcp_connect_ok)                                                                      \
	X(tcp_connect_refused)                                                                 \
	X(connect_count)                                                                       \
	X(connect_sum_us)                                                                      \
	/* DNS answered by the VM (UDP from port 53) */                                        \
	X(dns_responses)                                                                       \
	X(dns_noerror)                                                                         \
	X(dns_nxdomain)                                                                        \
	X(dns_servfail)                                                                        \
	X(dns_refused)                                                                         \
	X(dns_other)                                                                           \
	X(dns_latency_count) /* responses matched to their query (client addr, port, id) */    \
	X(dns_latency_sum_us)                                                                  \
	/* plaintext HTTP answered by the VM: segments from it beginning with "HTTP/1." */     \
	X(http_1xx)                                                                            \
	X(http_2xx)                                                                            \
	X(http_3xx)                                                                            \
	X(http_4xx)                                                                            \
	X(http_5xx)

struct vs_service_counters {
	VS_SERVICE_COUNTERS(VS_U64_FIELD_)
};
enum { VS_SERVICE_COUNTER_COUNT = 0 VS_SERVICE_COUNTERS(VS_COUNT_ONE_) };

/* service_pending: what the datapath remembers between a request and its answer, in an
 * LRU hash (bounded: a SYN flood evicts the oldest entries instead of failing inserts).
 * The per-tick sweep (net_sum.bpf.c) deletes entries older than its age (3 s), counting
 * a server handshake's as tcp_unanswered; the others just expire. */
#ifndef VS_TEST_LAYOUT_VARIANT
#define VS_SERVICE_PENDING_MAX 16384
#else
/* Only in the build the layout-migration test switches to (tests/CMakeLists.txt): another
 * bound changes the kept layout, as a release that resizes a kept table would. */
#define VS_SERVICE_PENDING_MAX 8192
#endif
#define VS_SERVICE_UNANSWERED_NS 3000000000ULL /* the sweep's default age: 3 s */

enum vs_pending_role {
	VS_ROLE_SERVER = 1, /* a SYN to the VM, waiting for its SYN-ACK or RST */
	VS_ROLE_CLIENT = 2, /* a SYN from the VM, waiting for the peer's SYN-ACK or RST */
	VS_ROLE_DNS = 3, /* a DNS query to the VM, waiting for its response */
	/* Or'ed into a TCP role: the handshake was answered. Kept, under a key of its own,
	 * until the sweep age, so that a SYN retransmitted after the answer (the SYN-ACK was
	 * lost beyond the tap) is still the same attempt; its own key, so that the datapath's
	 * close and the sweep's expiry of the open entry still decide by whose delete wins. */
	VS_ROLE_ANSWERED = 0x80,
};

/* Key of service_pending. Addresses are IPv4 (first 4 bytes, rest zero) or IPv6, ports
 * and the DNS id as on the wire (network order). "client" is the side that opened: for
 * VS_ROLE_SERVER the peer, for VS_ROLE_CLIENT the VM. A DNS query is matched by client
 * address, port and id only (server_addr zero, server_port the DNS id). */
struct vs_pending_key {
	__u32 slot;
	__u8 role; /* enum vs_pending_role */
	__u8 family; /* 4 or 6 */
	__u16 pad;
	__u8 client_addr[16];
	__u8 server_addr[16];
	__u16 client_port;
	__u16 server_port;
};

struct vs_pending {
	__u64 first_ns; /* bpf_ktime_get_ns() of the first SYN or query (retransmits keep it) */
};

/* ---- processes: lifecycle (proc.bpf.c) and per-tick sampling (tasks.bpf.c) ---- */

#define VS_MAX_PROCS 16384 /* tracked VM processes (LRU hash: a leak can never block new VMs) */
#define VS_COMM_LEN 16
#define VS_ARGS_LEN 1024 /* argv bytes carried by an exec event (NUL-separated, as cmdline) */

/* Value of `tracked` (key: tgid). User space inserts the processes it named as VMs. */
struct vs_tracked {
	__u64 start_boottime_ns; /* task->start_boottime of the group leader */
	/* What the process's exited threads (other than the leader) left of the counters the
	 * signal_struct does not keep: proc.bpf.c adds each such thread's value at its exit;
	 * the `dead` column of VS_TASK_COUNTERS reads them. Zero when tracking starts: threads
	 * that exited before are unknowable. */
	__u64 dead_run_delay_ns;
	__u64 dead_run_count;
};

/* Counters of a task (struct vs_task_counters): X(field, own, dead), all __u64.
 *   own:  the live thread's value, an expression over `t` (struct task_struct *);
 *   dead: what the process's exited threads left behind, an expression over `sig`
 *         (t->signal, struct signal_struct *) where the kernel keeps it, so that a
 *         process's total is the sum of own over its threads plus dead, as /proc does;
 *         over `tr` (its struct vs_tracked in `tracked`) where the kernel keeps nothing
 *         and proc.bpf.c collects exited threads itself (sched_info is per thread only).
 * Only the BPF side evaluates own and dead (BTF-typed direct loads, CO-RE relocated);
 * user space expands only the field names. VS_KEPT_(x) marks a field the kernel keeps
 * only with a config option (sched_info: CONFIG_SCHED_INFO; ioac: CONFIG_TASK_XACCT and
 * CONFIG_TASK_IO_ACCOUNTING): it reads 0 where the kernel lacks it, instead of failing
 * the load of every process program (proc_common.h), and user space leaves such fields
 * out of what it writes (discover/task_counter_support.h). */
#define VS_TASK_COUNTERS(X)                                                               \
	X(utime_ns, t->utime, sig->utime) /* raw: user space applies cputime_adjust */    \
	X(stime_ns, t->stime, sig->stime)                                                 \
	X(runtime_ns, t->se.sum_exec_runtime, sig->sum_sched_runtime)                     \
	X(min_flt, t->min_flt, sig->min_flt)                                              \
	X(maj_flt, t->maj_flt, sig->maj_flt)                                              \
	X(nvcsw, t->nvcsw, sig->nvcsw)                                                    \
	X(nivcsw, t->nivcsw, sig->nivcsw)                                                 \
	/* time runnable but waiting for a CPU, and timeslices (/proc/<pid>/schedstat) */ \
	X(run_delay_ns, VS_KEPT_(t->sched_info.run_delay), tr->dead_run_delay_ns)         \
	X(run_count, VS_KEPT_(t->sched_info.pcount), tr->dead_run_count)                  \
	VS_TASK_IO_COUNTERS(X)

/* The I/O part of VS_TASK_COUNTERS: /proc/<pid>/io, named as it names them (the vm_io
 * measurement expands this list with #field). */
#define VS_TASK_IO_COUNTERS(X)                                                         \
	X(read_bytes, VS_KEPT_(t->ioac.read_bytes), VS_KEPT_(sig->ioac.read_bytes))    \
	X(write_bytes, VS_KEPT_(t->ioac.write_bytes), VS_KEPT_(sig->ioac.write_bytes)) \
	X(cancelled_write_bytes, VS_KEPT_(t->ioac.cancelled_write_bytes),              \
	  VS_KEPT_(sig->ioac.cancelled_write_bytes))                                   \
	X(rchar, VS_KEPT_(t->ioac.rchar), VS_KEPT_(sig->ioac.rchar))                   \
	X(wchar, VS_KEPT_(t->ioac.wchar), VS_KEPT_(sig->ioac.wchar))                   \
	X(syscr, VS_KEPT_(t->ioac.syscr), VS_KEPT_(sig->ioac.syscr))                   \
	X(syscw, VS_KEPT_(t->ioac.syscw), VS_KEPT_(sig->ioac.syscw))

enum { VS_TASK_COUNTER_COUNT = 0 VS_TASK_COUNTERS(VS_COUNT_ONE_) };
enum { VS_TASK_IO_COUNTER_COUNT = 0 VS_TASK_IO_COUNTERS(VS_COUNT_ONE_) };

/* CPU, faults, context switches, CPU wait and I/O of one task, or of a process's exited
 * threads. Times in ns, raw as the kernel keeps them: user space applies the
 * kernel's utime/stime scaling (cputime_adjust) so values match /proc. */
#define VS_TASK_FIELD_(field, own, dead) __u64 field;
struct vs_task_counters {
	VS_TASK_COUNTERS(VS_TASK_FIELD_)
};

enum vs_proc_event_type {
	VS_EV_EXEC = 1, /* any exec: user space decides whether it is a VM */
	VS_EV_EXIT = 2, /* last thread of a tracked process exited */
	/* a tracked process forked a new process (tracked from birth; ppid = parent) */
	VS_EV_FORK = 3,
};

/* proc_events ring buffer record. */
struct vs_proc_event {
	__u32 type; /* enum vs_proc_event_type */
	__u32 tgid;
	__u32 ppid;
	__s32 exit_code; /* task->exit_code: signal in bits 0-6, exit status in bits 8-15 */
	__u64 start_boottime_ns;
	__u64 time_boottime_ns; /* when it happened (bpf_ktime_get_boot_ns) */
	struct vs_task_counters final; /* exit: the process's totals over all threads */
	char comm[VS_COMM_LEN];
	/* exec: the new argv, read at exec time so that a process gone before user space
	 * looks at it is still named. args_len < VS_ARGS_LEN unless truncated. */
	__u32 args_len;
	__u32 args_truncated;
	char args[VS_ARGS_LEN];
};

/* A record in the proc_events ring is an event's head (everything before args) and then
 * args_len bytes of args: exec events carry the argv they have, fork and exit events none.
 * Records are that short so that a small ring holds as many events as a 2 MiB ring of
 * whole events did (a ring's pages are mapped, and resident, twice in user space). */
#define VS_PROC_EVENT_HEAD_LEN __builtin_offsetof(struct vs_proc_event, args)

#define VS_WALK_MAX VS_MAX_PROCS /* records of one walk: at most one per tracked process */

/* Threads of a tracked process: one record per thread from the task iterator
 * (tasks.bpf.c), one record per process from the task-list walk (tasks_walk.bpf.c).
 * User space sums records of the same tgid either way. */
struct vs_task_sample {
	__u32 tgid;
	__u32 tid; /* the (first) thread of the record */
	__u32 is_leader; /* 1: the fields below `own` are set (process-wide values) */
	__u32 threads; /* live threads summed into `own` */
	struct vs_task_counters own; /* live threads */
	struct vs_task_counters dead; /* leader only: threads that already exited */
	__u64 start_boottime_ns; /* leader only */
	__u64 rss_file_pages; /* leader only: mm counters, as /proc/<pid>/statm */
	__u64 rss_anon_pages;
	__u64 rss_shmem_pages;
	__u64 total_vm_pages;
	__u64 data_vm_pages;
	__u64 stack_vm_pages;
	__u64 text_pages;
};

#endif /* VMSCOPE_BPF_VMSCOPE_H */
