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

static __always_inline void read_task_counters(struct task_struct* t, struct vs_task_counters* c) {
  c->utime_ns = BPF_CORE_READ(t, utime);
  c->stime_ns = BPF_CORE_READ(t, stime);
  c->runtime_ns = BPF_CORE_READ(t, se.sum_exec_runtime);
  c->min_flt = BPF_CORE_READ(t, min_flt);
  c->maj_flt = BPF_CORE_READ(t, maj_flt);
  c->nvcsw = BPF_CORE_READ(t, nvcsw);
  c->nivcsw = BPF_CORE_READ(t, nivcsw);
}

/* What the process's exited threads left behind in signal_struct. */
static __always_inline void read_dead_counters(struct task_struct* t, struct vs_task_counters* c) {
  struct signal_struct* sig = BPF_CORE_READ(t, signal);
  c->utime_ns = BPF_CORE_READ(sig, utime);
  c->stime_ns = BPF_CORE_READ(sig, stime);
  c->runtime_ns = BPF_CORE_READ(sig, sum_sched_runtime);
  c->min_flt = BPF_CORE_READ(sig, min_flt);
  c->maj_flt = BPF_CORE_READ(sig, maj_flt);
  c->nvcsw = BPF_CORE_READ(sig, nvcsw);
  c->nivcsw = BPF_CORE_READ(sig, nivcsw);
}

#endif /* VMSCOPE_BPF_PROC_COMMON_H */
