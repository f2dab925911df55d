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

/* Direct (BTF-typed, CO-RE relocated) loads: both callers hold BTF task pointers, and a
 * load costs far less than a bpf_probe_read_kernel() call per field. */
static __always_inline void read_task_counters(struct task_struct* t, struct vs_task_counters* c) {
  c->utime_ns = t->utime;
  c->stime_ns = t->stime;
  c->runtime_ns = t->se.sum_exec_runtime;
  c->min_flt = t->min_flt;
  c->maj_flt = t->maj_flt;
  c->nvcsw = t->nvcsw;
  c->nivcsw = t->nivcsw;
}

/* What the process's exited threads left behind in signal_struct. */
static __always_inline void read_dead_counters(struct task_struct* t, struct vs_task_counters* c) {
  struct signal_struct* sig = t->signal;
  c->utime_ns = sig->utime;
  c->stime_ns = sig->stime;
  c->runtime_ns = sig->sum_sched_runtime;
  c->min_flt = sig->min_flt;
  c->maj_flt = sig->maj_flt;
  c->nvcsw = sig->nvcsw;
  c->nivcsw = sig->nivcsw;
}

#endif /* VMSCOPE_BPF_PROC_COMMON_H */
