// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle: every exec is reported (user space names VMs from argv), and the
 * exit of a tracked process's last thread is reported at once with its exit code and
 * final counters; its `tracked` entry is deleted unconditionally. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "proc_common.h"

/* Records of VS_PROC_EVENT_HEAD_LEN (184 bytes) plus an exec's argv: 512 KiB hold ~2,800
 * fork or exit events, ~1,400 execs of a 200-byte command line. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024);
} proc_events SEC(".maps");

/* Where an exec event is built: its record's length is known only once the argv is read,
 * and a reservation's size must be a constant. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vs_proc_event);
} exec_scratch SEC(".maps");

/* Events lost because the ring buffer was full (user space reports it). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} proc_events_lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&proc_events_lost, &zero);
	if (lost)
		*lost += 1;
}

/* Everything but the args buffer (a fork or exit record has none; args_len says what of
 * an exec's is valid). */
static __always_inline void clear_header(struct vs_proc_event *e)
{
	__builtin_memset(e, 0, VS_PROC_EVENT_HEAD_LEN);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vs_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct vs_proc_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;
	clear_header(e);
	e->type = VS_EV_EXEC;
	e->tgid = BPF_CORE_READ(p, tgid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->start_boottime_ns = BPF_CORE_READ(p, start_boottime);
	e->time_boottime_ns = bpf_ktime_get_boot_ns();
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->comm);
	/* The new image's argv sits on its fresh stack: present, readable without faulting. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	__u64 start = BPF_CORE_READ(mm, arg_start), end = BPF_CORE_READ(mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len > VS_ARGS_LEN) {
		len = VS_ARGS_LEN;
		e->args_truncated = 1;
	}
	if (len == 0 || bpf_probe_read_user(e->args, len, (void *)start) != 0)
		len = 0;
	e->args_len = len;
	if (bpf_ringbuf_output(&proc_events, e, VS_PROC_EVENT_HEAD_LEN + len, 0))
		count_lost();
	return 0;
}

/* A VM process's children belong to the VM (e.g. crosvm's sandboxed device processes):
 * tracked in the kernel from birth, so their CPU and memory count from the start. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(vs_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ctgid != (__u32)BPF_CORE_READ(child, pid))
		return 0; /* a thread, not a process */
	if (!bpf_map_lookup_elem(&tracked, &ptgid))
		return 0;
	struct vs_tracked v = { .start_boottime_ns = BPF_CORE_READ(child, start_boottime) };
	bpf_map_update_elem(&tracked, &ctgid, &v, BPF_ANY);

	struct vs_proc_event *e = bpf_ringbuf_reserve(&proc_events, VS_PROC_EVENT_HEAD_LEN, 0);
	if (!e) {
		count_lost();
		return 0;
	}
	clear_header(e);
	e->type = VS_EV_FORK;
	e->tgid = ctgid;
	e->ppid = ptgid;
	e->start_boottime_ns = v.start_boottime_ns;
	e->time_boottime_ns = bpf_ktime_get_boot_ns();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Fires for every exiting thread. A tracked process's threads that exit before the last
 * one leave their sched_info in its `tracked` entry (the signal_struct keeps none), so
 * that its run_delay and run_count never lose them; the leader is left out: an exited
 * leader stays in the thread list, a zombie, until the whole process is gone, and is
 * read there. The exit of the last thread is reported with the final counters.
 * signal->live reaches 0 before the tracepoint (do_exit), on old and new kernels. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(vs_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	struct vs_tracked *t = bpf_map_lookup_elem(&tracked, &tgid);
	if (!t)
		return 0;
	if (p->signal->live.counter != 0) {
		if (p->pid != tgid) {
			__sync_fetch_and_add(&t->dead_run_delay_ns,
					     VS_KEPT_(p->sched_info.run_delay));
			__sync_fetch_and_add(&t->dead_run_count, VS_KEPT_(p->sched_info.pcount));
		}
		return 0;
	}
	struct vs_tracked tr = *t; /* the entry is freed (and may be reused) once deleted */
	bpf_map_delete_elem(&tracked, &tgid);

	struct vs_proc_event *e = bpf_ringbuf_reserve(&proc_events, VS_PROC_EVENT_HEAD_LEN, 0);
	if (!e) {
		count_lost();
		return 0;
	}
	clear_header(e);
	e->type = VS_EV_EXIT;
	e->tgid = tgid;
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->exit_code = BPF_CORE_READ(p, exit_code);
	e->start_boottime_ns = BPF_CORE_READ(p, group_leader, start_boottime);
	e->time_boottime_ns = bpf_ktime_get_boot_ns();
	/* The process's total: exited threads + this last one (+ the leader, if it exited
	 * before: a zombie, not yet added to the signal_struct). */
	read_dead_counters(p, &tr, &e->final);
	add_task_counters(p, &e->final);
	struct task_struct *leader = p->group_leader;
	if (leader != p)
		add_task_counters(leader, &e->final);
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
