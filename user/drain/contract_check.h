// Layout checks of the kernel/user contract (bpf/vmscope.h): a change on one side that
// the other does not expect fails the build instead of corrupting counters.
#pragma once

#include <cstddef>

#include "vmscope.h"

// The counter structs are generated from their lists (VS_NET_COUNTERS, VS_TASK_COUNTERS):
// u64s back to back, in list order. The offsets below pin the fields the datapath and the
// pinned maps' readers know; a counter added to a list goes at its end.
static_assert(sizeof(vs_net_counters) == VS_NET_COUNTER_WORDS * 8,
              "vs_net_counters: u64s only, no padding");
static_assert(offsetof(vs_net_counters, bytes) == 0);
static_assert(offsetof(vs_net_counters, packets) == 8);
static_assert(offsetof(vs_net_counters, mcast_packets) == 16);
static_assert(offsetof(vs_net_counters, bcast_packets) == 24);
static_assert(offsetof(vs_net_counters, l4_bytes) == 32);
static_assert(offsetof(vs_net_counters, tcp_syns) == 64);
static_assert(sizeof(vs_net_counters) % 8 == 0, "per-CPU values are 8-byte aligned per CPU");
static_assert(VS_DIR_COUNT == 2 && VS_L4_COUNT == 4);
static_assert(sizeof(vs_dev_counters) == 2 * sizeof(vs_net_counters));
static_assert(offsetof(vs_dev_counters, dir[VS_DIR_EGRESS]) == sizeof(vs_net_counters));

// Process contract (bpf/proc.bpf.c events; the samplers bpf/tasks_walk.bpf.c and its
// iter/task fallback bpf/tasks.bpf.c).
static_assert(sizeof(vs_tracked) == 24);
static_assert(offsetof(vs_tracked, dead_run_delay_ns) == 8);
static_assert(sizeof(vs_task_counters) == VS_TASK_COUNTER_COUNT * 8,
              "vs_task_counters: u64s only, no padding");
static_assert(offsetof(vs_task_counters, utime_ns) == 0);
static_assert(offsetof(vs_task_counters, runtime_ns) == 16);
static_assert(offsetof(vs_task_counters, nivcsw) == 48);
static_assert(offsetof(vs_task_counters, run_delay_ns) == 56);
static_assert(offsetof(vs_task_counters, read_bytes) == 72);
static_assert(offsetof(vs_task_counters, syscw) == 120);
static_assert(offsetof(vs_task_sample, threads) == 12);
static_assert(offsetof(vs_task_sample, own) == 16);
static_assert(offsetof(vs_task_sample, dead) == 16 + sizeof(vs_task_counters));
static_assert(offsetof(vs_task_sample, start_boottime_ns) == 16 + 2 * sizeof(vs_task_counters));
static_assert(sizeof(vs_task_sample) == 16 + 2 * sizeof(vs_task_counters) + 8 * 8,
              "vs_task_sample: records are read back to back; no tail padding");
static_assert(offsetof(vs_proc_event, start_boottime_ns) == 16);
static_assert(offsetof(vs_proc_event, final) == 32);
static_assert(offsetof(vs_proc_event, comm) == 32 + sizeof(vs_task_counters));
static_assert(offsetof(vs_proc_event, args_len) == 32 + sizeof(vs_task_counters) + VS_COMM_LEN);
static_assert(offsetof(vs_proc_event, args) == offsetof(vs_proc_event, args_len) + 8);
