/* Kernel-side reading of one tracked task into a vs_task_sample, shared by the two ways
 * of sampling (tasks.bpf.c: iter/task; tasks_walk.bpf.c: one program run walking the task
 * list). Not part of the user contract. Each object including it gets its own copies of
 * the globals below. */
#ifndef VMSCOPE_BPF_TASK_SAMPLE_H
#define VMSCOPE_BPF_TASK_SAMPLE_H

#include "proc_common.h"

#define PAGE_SHIFT_ 12
#define PAGE_SIZE_ (1UL << PAGE_SHIFT_)

/* mm->rss_stat is an array of percpu_counter since 6.2 (reading .count is what
 * /proc/<pid>/statm does); older kernels have struct mm_rss_stat { atomic_long_t count[]; }. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
};
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
};

/* Set by user space before load: possible CPUs, for summing per-CPU counter deltas (at
 * most VS_MAX_CPUS, checked there). The per-CPU loops stop at it too: a constant the
 * verifier knows (frozen rodata), so it checks nr_cpus iterations, not VS_MAX_CPUS. */
const volatile __u32 nr_cpus = 1;

/* A per-CPU map used only to find each CPU's per-CPU offset: the pointer to CPU n's
 * element minus the array's per-CPU base (pptrs[0]) is __per_cpu_offset[n], which locates
 * CPU n's share of any percpu_counter. (Kernels here export no per-CPU symbols.) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_offset_probe SEC(".maps");

static volatile __u64 probe_addr, probe_cpu_addr;
/* __per_cpu_offset[cpu], found once (they never change); 0 entries = not found yet. */
static __u64 cpu_offsets[VS_MAX_CPUS];
static __u32 cpu_offsets_n;

static __always_inline void find_cpu_offsets(void)
{
	/* The verifier forbids arithmetic on a map pointer; through a global it is a number. */
	probe_addr = (__u64)(void *)&cpu_offset_probe;
	__u64 base = 0;
	bpf_probe_read_kernel(
		&base, sizeof(base),
		(void *)(probe_addr + bpf_core_field_offset(struct bpf_array, pptrs)));
	__u32 zero = 0, n = 0;
	for (__u32 cpu = 0; cpu < VS_MAX_CPUS && cpu < nr_cpus; cpu++) {
		void *mine = bpf_map_lookup_percpu_elem(&cpu_offset_probe, &zero, cpu);
		if (!mine)
			break;
		probe_cpu_addr = (__u64)mine; /* as a number, like probe_addr */
		cpu_offsets[cpu] = probe_cpu_addr - base;
		n = cpu + 1;
	}
	cpu_offsets_n = n;
}

/* Kernels since 6.2 have it (tracing programs); it turns an address into a BTF pointer
 * whose loads are plain (fault-safe) loads instead of a bpf_probe_read_kernel() call. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

enum { MM_FILEPAGES_ = 0, MM_ANONPAGES_ = 1, MM_SWAPENTS_ = 2, MM_SHMEMPAGES_ = 3 };

struct rss_pages {
	long file, anon, shmem;
};

/* Pointers as plain numbers (for global functions' scalar arguments): the verifier
 * keeps no pointer type across a store to a global. */
static volatile __u64 number_;
static __always_inline __u64 as_number(const void *p)
{
	number_ = (__u64)p;
	return number_;
}

/* The per-CPU loops are global functions: the verifier checks each once, not again
 * for every state of a caller's loop (tasks_walk.bpf.c walks all tasks in one run). */

/* Sum of one percpu_counter's per-CPU deltas (counters: its __percpu pointer). */
__noinline long vs_percpu_deltas(__u64 counters)
{
	long sum = 0;
	for (__u32 cpu = 0; cpu < VS_MAX_CPUS && cpu < nr_cpus && cpu < cpu_offsets_n; cpu++) {
		__s32 delta = 0;
		bpf_probe_read_kernel(&delta, sizeof(delta), (void *)(counters + cpu_offsets[cpu]));
		sum += delta;
	}
	return sum;
}

/* Adds every CPU's share of file/anon/shmem when an mm's counters lie side by side in
 * one per-CPU block at base (see rss_percpu_sums). */
__noinline int vs_add_percpu_blocks(__u64 base, struct rss_pages *r)
{
	if (!r)
		return 0;
	if (bpf_rdonly_cast) {
		for (__u32 cpu = 0; cpu < VS_MAX_CPUS && cpu < nr_cpus && cpu < cpu_offsets_n;
		     cpu++) {
			struct timespec64 *block =
				bpf_rdonly_cast((void *)(base + cpu_offsets[cpu]),
						bpf_core_type_id_kernel(struct timespec64));
			__u64 lo = (__u64)block->tv_sec,
			      hi = (__u64)block->tv_nsec; /* s32[0..1], s32[2..3] */
			r->file += (__s32)lo;
			r->anon += (__s32)(lo >> 32);
			r->shmem += (__s32)(hi >> 32);
		}
		return 0;
	}
	for (__u32 cpu = 0; cpu < VS_MAX_CPUS && cpu < nr_cpus && cpu < cpu_offsets_n; cpu++) {
		__s32 block[4] = {};
		bpf_probe_read_kernel(block, sizeof(block), (void *)(base + cpu_offsets[cpu]));
		r->file += block[MM_FILEPAGES_];
		r->anon += block[MM_ANONPAGES_];
		r->shmem += block[MM_SHMEMPAGES_];
	}
	return 0;
}

/* The three resident counters of an mm, each summed like percpu_counter_sum(): what
 * /proc/<pid>/statm reports on current kernels (the shared .count alone lags by up to
 * batch x CPUs pages). percpu_counter_init_many() gives the NR_MM_COUNTERS counters of
 * one mm one per-CPU block, s32 side by side: when that holds (checked per mm), each
 * CPU's share of all of them is one 16-byte read, done with two plain loads through
 * bpf_rdonly_cast() (as a struct timespec64: any kernel struct of two 64-bit integers
 * would do) or, without it, one bpf_probe_read_kernel(). Otherwise one read per counter
 * and CPU. */
static __always_inline void rss_percpu_sums(struct mm_struct *mm, struct rss_pages *r)
{
	r->file = mm->rss_stat[MM_FILEPAGES_].count;
	r->anon = mm->rss_stat[MM_ANONPAGES_].count;
	r->shmem = mm->rss_stat[MM_SHMEMPAGES_].count;
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_map_lookup_percpu_elem))
		return;
	if (cpu_offsets_n == 0)
		find_cpu_offsets();
	__u64 base = as_number(mm->rss_stat[0].counters);
	if (as_number(mm->rss_stat[1].counters) != base + 4 ||
	    as_number(mm->rss_stat[2].counters) != base + 8 ||
	    as_number(mm->rss_stat[3].counters) != base + 12) {
		r->file += vs_percpu_deltas(as_number(mm->rss_stat[MM_FILEPAGES_].counters));
		r->anon += vs_percpu_deltas(as_number(mm->rss_stat[MM_ANONPAGES_].counters));
		r->shmem += vs_percpu_deltas(as_number(mm->rss_stat[MM_SHMEMPAGES_].counters));
		return;
	}
	vs_add_percpu_blocks(base, r);
}

static __always_inline void rss_pages(struct mm_struct *mm, struct rss_pages *r)
{
	if (bpf_core_type_exists(struct percpu_counter) &&
	    bpf_core_field_size(mm->rss_stat) == 4 * sizeof(struct percpu_counter)) {
		rss_percpu_sums(mm, r);
	} else {
		struct mm_struct___old *old = (void *)mm;
		r->file = BPF_CORE_READ(old, rss_stat.count[MM_FILEPAGES_].counter);
		r->anon = BPF_CORE_READ(old, rss_stat.count[MM_ANONPAGES_].counter);
		r->shmem = BPF_CORE_READ(old, rss_stat.count[MM_SHMEMPAGES_].counter);
	}
}

static __always_inline __u64 positive(long v)
{
	return v > 0 ? v : 0;
}

/* Process-wide values, read on the group leader: what exited threads left behind (tr:
 * its `tracked` entry), start time, and the mm counters as /proc/<pid>/statm reports them. */
static __always_inline void read_leader(struct task_struct *t, struct vs_tracked *tr,
					struct vs_task_sample *s)
{
	s->is_leader = 1;
	read_dead_counters(t, tr, &s->dead);
	s->start_boottime_ns = t->start_boottime;
	struct mm_struct *mm = t->mm;
	if (!mm)
		return;
	struct rss_pages rss;
	rss_pages(mm, &rss);
	s->rss_file_pages = positive(rss.file);
	s->rss_anon_pages = positive(rss.anon);
	s->rss_shmem_pages = positive(rss.shmem);
	s->total_vm_pages = mm->total_vm;
	s->data_vm_pages = mm->data_vm;
	s->stack_vm_pages = mm->stack_vm;
	__u64 start = mm->start_code & ~(PAGE_SIZE_ - 1);
	__u64 end = (mm->end_code + PAGE_SIZE_ - 1) & ~(PAGE_SIZE_ - 1);
	s->text_pages = end > start ? (end - start) >> PAGE_SHIFT_ : 0;
}

#endif /* VMSCOPE_BPF_TASK_SAMPLE_H */
