/* Kernel-side helpers shared by proc.bpf.c and tasks.bpf.c (not part of the user contract). */
#ifndef VMSCOPE_BPF_PROC_COMMON_H
#define VMSCOPE_BPF_PROC_COMMON_H

#include "vmscope.h"

/* Processes user space named as VMs. Shared by both objects (user space reuses the fd). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VS_MAX_PROCS);
	__type(key, __u32); /* tgid */
	__type(value, struct vs_tracked);
} tracked SEC(".maps");

/* Reads and sums of VS_TASK_COUNTERS (vmscope.h), whose own/dead columns are written over
 * `t`, `sig` and `tr`. Direct (BTF-typed, CO-RE relocated) loads: the callers hold BTF task
 * pointers, and a load costs far less than a bpf_probe_read_kernel() call per field. */
/* A field only some kernel configurations have (VS_KEPT_ in vmscope.h): 0 where the
 * running kernel lacks it. The relocation makes the condition a constant at load time, so
 * the verifier drops the load that would not relocate. */
#define VS_KEPT_(x) (bpf_core_field_exists(x) ? (x) : 0)

#define VS_SET_OWN_(field, own, dead) c->field = (own);
#define VS_ADD_OWN_(field, own, dead) c->field += (own);
#define VS_SET_DEAD_(field, own, dead) c->field = (dead);

static __always_inline void read_task_counters(struct task_struct *t, struct vs_task_counters *c)
{
	VS_TASK_COUNTERS(VS_SET_OWN_)
}

/* c += the live thread t's counters (summing a process's threads). */
static __always_inline void add_task_counters(struct task_struct *t, struct vs_task_counters *c)
{
	VS_TASK_COUNTERS(VS_ADD_OWN_)
}

/* What the process's exited threads left behind: in signal_struct, and in its `tracked`
 * entry tr for what the kernel does not keep (never NULL: the caller looked it up). */
static __always_inline void read_dead_counters(struct task_struct *t, struct vs_tracked *tr,
					       struct vs_task_counters *c)
{
	struct signal_struct *sig = t->signal;
	VS_TASK_COUNTERS(VS_SET_DEAD_)
}

#endif /* VMSCOPE_BPF_PROC_COMMON_H */
