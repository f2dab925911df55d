// SPDX-License-Identifier: GPL-2.0
/* Baseline for the per-packet benchmark: a tc program that does nothing and returns
 * TCX_NEXT / TC_ACT_UNSPEC (-1), exactly what vs_tc_ingress returns. Its cost under
 * bpf_prog_test_run is the harness + program-call floor that vmscope is measured against. */
// clang-format off: vmlinux.h must come first in BPF programs
#include "vmlinux.h"
// clang-format on

#include <bpf/bpf_helpers.h>

SEC("tc")
int empty_tc(struct __sk_buff* skb) {
  return -1;
}

char LICENSE[] SEC("license") = "GPL";
