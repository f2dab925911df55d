// SPDX-License-Identifier: GPL-2.0
/* Task iterator: one pass over all tasks per tick; for every thread of a tracked
 * process it writes a vs_task_sample (CPU, faults, context switches; on the group
 * leader also the process-wide memory counters and what exited threads left behind).
 * The fallback where tasks_walk.bpf.c cannot load (kernels before 6.7). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "task_sample.h"

SEC("iter/task")
int vs_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	if (!t)
		return 0;
	__u32 tgid = t->tgid;
	struct vs_tracked *tr = bpf_map_lookup_elem(&tracked, &tgid);
	if (!tr)
		return 0;

	struct vs_task_sample s;
	__builtin_memset(&s, 0, sizeof(s));
	s.tgid = tgid;
	s.tid = t->pid;
	s.threads = 1;
	read_task_counters(t, &s.own);
	if (t->pid == t->tgid)
		read_leader(t, tr, &s);
	bpf_seq_write(ctx->meta->seq, &s, sizeof(s));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
