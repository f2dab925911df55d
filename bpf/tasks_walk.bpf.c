// SPDX-License-Identifier: GPL-2.0
/* Task-list walk: one program run per tick (BPF_PROG_RUN of a syscall program) walks
 * every thread with the open-coded task iterator (6.7+) under RCU and writes one
 * vs_task_sample per tracked process into `walk`, an mmapable array user space reads
 * through its mapping. Unlike iter/task it takes no task reference and no pid lookup per
 * task, runs no program and seq_file round per task, and sums a process's threads
 * here: the iterator visits them one after another. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "task_sample.h"

extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task,
			     unsigned int flags) __ksym;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __ksym;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __ksym;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

/* Output of the last run: records [0, walk_records) of `walk`; walk_truncated if some
 * did not fit. A map of its own rather than global data, so that user space maps only
 * it, read-only, and touches only the pages written. The count is a global, so that the
 * verifier does not track it through the loop. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, VS_WALK_MAX);
	__type(key, __u32);
	__type(value, struct vs_task_sample);
} walk SEC(".maps");
__u32 walk_records;
__u32 walk_truncated;

/* Named like the iterator program, so the self-metrics keep their field names. */
SEC("syscall")
int vs_tasks(void *ctx)
{
	struct bpf_iter_task it;
	struct task_struct *t;
	walk_records = 0;
	walk_truncated = 0;
	bpf_rcu_read_lock();
	bpf_iter_task_new(&it, NULL, BPF_TASK_ITER_ALL_THREADS);
	while ((t = bpf_iter_task_next(&it))) {
		__u32 tgid = t->tgid;
		__u32 n = walk_records;
		__u32 last = n - 1;
		struct vs_task_sample *s = bpf_map_lookup_elem(&walk, &last); /* null when n == 0 */
		if (!s || s->tgid != tgid) {
			/* A new process (the last record's threads are done). */
			struct vs_tracked *tr = bpf_map_lookup_elem(&tracked, &tgid);
			if (!tr)
				continue;
			s = bpf_map_lookup_elem(&walk, &n);
			if (!s) {
				walk_truncated = 1;
				break;
			}
			__builtin_memset(s, 0, sizeof(*s));
			s->tgid = tgid;
			s->tid = t->pid;
			walk_records = n + 1;
			/* The walk visits a process's leader first (the task list holds leaders,
			 * their threads follow), so its `tracked` entry is at hand. */
			if (t->pid == tgid)
				read_leader(t, tr, s);
		}
		s->threads++;
		add_task_counters(t, &s->own);
	}
	bpf_iter_task_destroy(&it);
	bpf_rcu_read_unlock();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
