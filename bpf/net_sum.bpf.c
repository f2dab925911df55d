// SPDX-License-Identifier: GPL-2.0
/* Drain helper: one program run per tick (BPF_PROG_RUN of a syscall program) sums the
 * per-CPU counters of slots [0, sum_slots) of net_stats (shared with net.bpf.o) into
 * net_sums, a plain array that user space reads through a mapping. Replaces the batch
 * lookup's copy-out of every CPU's value to user space; the datapath is unchanged.
 * Needs bpf_loop (5.17) and bpf_map_lookup_percpu_elem (5.19); user space falls back
 * to the batch lookup where it does not load. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "vmscope.h"

/* Set by user space before load: possible CPUs (at most VS_MAX_CPUS, checked there). */
const volatile __u32 nr_cpus = 1;

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

/* Set by user space before each run: how many slots to sum. */
__u32 sum_slots;

#define VS_ADD_(field) a->field += b->field;
#define VS_ADD_ARRAY_(field, n)       \
	for (int i = 0; i < (n); i++) \
		a->field[i] += b->field[i];

static __always_inline void add(struct vs_net_counters *a, const struct vs_net_counters *b)
{
	VS_NET_COUNTERS(VS_ADD_, VS_ADD_ARRAY_)
}

static long sum_slot(__u32 slot, void *ctx)
{
	struct vs_dev_counters *sum = bpf_map_lookup_elem(&net_sums, &slot);
	if (!sum)
		return 1;
	__builtin_memset(sum, 0, sizeof(*sum));
	for (__u32 cpu = 0; cpu < nr_cpus && cpu < VS_MAX_CPUS; cpu++) {
		const struct vs_dev_counters *c =
			bpf_map_lookup_percpu_elem(&net_stats, &slot, cpu);
		if (!c)
			break;
		add(&sum->dir[VS_DIR_INGRESS], &c->dir[VS_DIR_INGRESS]);
		add(&sum->dir[VS_DIR_EGRESS], &c->dir[VS_DIR_EGRESS]);
	}
	return 0;
}

SEC("syscall")
int vs_net_sum(void *ctx)
{
	bpf_loop(sum_slots, sum_slot, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
