// SPDX-License-Identifier: GPL-2.0
/* Drain helpers, run once per tick (BPF_PROG_RUN of syscall programs):
 *   vs_net_sum sums the per-CPU counters of slots [0, sum_slots) of net_stats and
 *     service_stats (shared with net.bpf.o) into net_sums and service_sums, plain arrays
 *     that user space reads through a mapping. Replaces the batch lookup's copy-out of
 *     every CPU's value to user space; the datapath is unchanged.
 *   vs_service_sweep expires service_pending entries older than sweep_age_ns, counting
 *     an unanswered SYN to a VM as tcp_unanswered, so that this counter too is kept in
 *     the kernel and only goes up; it also counts the entries left (the table's fill).
 *     Run by the agent only: a `vmscope top` reading the agent's maps sums, never sweeps.
 * Needs bpf_loop (5.17) and bpf_map_lookup_percpu_elem (5.19); user space falls back
 * to the batch lookup where it does not load (and then nothing sweeps: the LRU still
 * bounds the table, tcp_unanswered stays 0). */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "vmscope.h"

/* Set by user space before load: possible CPUs (at most VS_MAX_CPUS, checked there). */
const volatile __u32 nr_cpus = 1;
/* Age at which an open handshake or query counts as unanswered; tests shorten it. */
const volatile __u64 sweep_age_ns = VS_SERVICE_UNANSWERED_NS;

/* net.bpf.o's map (user space reuses its fd). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct vs_dev_counters);
} net_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct vs_dev_counters);
} net_sums SEC(".maps");

/* net.bpf.o's service maps (user space reuses their fds; service_pending is not
 * created where nothing sweeps). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct vs_service_counters);
} service_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VS_SERVICE_PENDING_MAX);
	__type(key, struct vs_pending_key);
	__type(value, struct vs_pending);
} service_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, VS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct vs_service_counters);
} service_sums SEC(".maps");

/* Set by user space before each run: how many slots to sum. */
__u32 sum_slots;
/* Written by each sweep: service_pending entries it left (younger than sweep_age_ns). */
__u32 pending_entries;

#define VS_ADD_(field) a->field += b->field;
#define VS_ADD_ARRAY_(field, n)       \
	for (int i = 0; i < (n); i++) \
		a->field[i] += b->field[i];

static __always_inline void add(struct vs_net_counters *a, const struct vs_net_counters *b)
{
	VS_NET_COUNTERS(VS_ADD_, VS_ADD_ARRAY_)
}

#define VS_ADD_SERVICE_(field) s->field += t->field;

static __always_inline void add_service(struct vs_service_counters *s,
					const struct vs_service_counters *t)
{
	VS_SERVICE_COUNTERS(VS_ADD_SERVICE_)
}

static long sum_slot(__u32 slot, void *ctx)
{
	struct vs_dev_counters *sum = bpf_map_lookup_elem(&net_sums, &slot);
	struct vs_service_counters *svc = bpf_map_lookup_elem(&service_sums, &slot);
	if (!sum || !svc)
		return 1;
	__builtin_memset(sum, 0, sizeof(*sum));
	__builtin_memset(svc, 0, sizeof(*svc));
	for (__u32 cpu = 0; cpu < nr_cpus && cpu < VS_MAX_CPUS; cpu++) {
		const struct vs_dev_counters *c =
			bpf_map_lookup_percpu_elem(&net_stats, &slot, cpu);
		const struct vs_service_counters *t =
			bpf_map_lookup_percpu_elem(&service_stats, &slot, cpu);
		if (!c || !t)
			break;
		add(&sum->dir[VS_DIR_INGRESS], &c->dir[VS_DIR_INGRESS]);
		add(&sum->dir[VS_DIR_EGRESS], &c->dir[VS_DIR_EGRESS]);
		add_service(svc, t);
	}
	return 0;
}

SEC("syscall")
int vs_net_sum(void *ctx)
{
	bpf_loop(sum_slots, sum_slot, NULL, 0);
	return 0;
}

struct sweep_ctx {
	__u64 now;
	__u32 left;
};

static long sweep_entry(struct bpf_map *map, struct vs_pending_key *key, struct vs_pending *v,
			struct sweep_ctx *ctx)
{
	if (ctx->now - v->first_ns < sweep_age_ns || v->first_ns > ctx->now) {
		ctx->left++;
		return 0;
	}
	__u32 slot = key->slot;
	int server = key->role == VS_ROLE_SERVER;
	/* a failed delete: the datapath closed it meanwhile (answered after all) */
	if (bpf_map_delete_elem(map, key) == 0 && server) {
		/* this CPU's element: the datapath never writes tcp_unanswered, so the
		 * sweep's increment cannot race with its increments of other fields */
		struct vs_service_counters *c = bpf_map_lookup_elem(&service_stats, &slot);
		if (c)
			c->tcp_unanswered++;
	}
	return 0;
}

SEC("syscall")
int vs_service_sweep(void *ctx)
{
	struct sweep_ctx s = { .now = bpf_ktime_get_ns() };
	bpf_for_each_map_elem(&service_pending, sweep_entry, &s, 0);
	pending_entries = s.left;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
