// SPDX-License-Identifier: GPL-2.0
/* Another tool's tc program for the coexistence test (tests/root/coexistence_test.cpp):
 * counts every frame it sees and lets the next program run, as vmscope's do. */
// clang-format off: vmlinux.h must come first in BPF programs
#include "vmlinux.h"
// clang-format on

#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} seen SEC(".maps");

SEC("tc")
int foreign_count(struct __sk_buff* skb) {
  __u32 key = 0;
  __u64* n = bpf_map_lookup_elem(&seen, &key);
  if (n) __sync_fetch_and_add(n, 1);
  return -1; /* TCX_NEXT / TC_ACT_UNSPEC */
}

char LICENSE[] SEC("license") = "GPL";
