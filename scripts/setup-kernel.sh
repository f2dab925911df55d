#!/usr/bin/env bash
# Mounts what BPF attachment needs and the machine may lack at boot: bpffs and tracefs.
set -euo pipefail
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
[ -r /sys/kernel/btf/vmlinux ] || { echo "setup-kernel.sh: kernel has no BTF (/sys/kernel/btf/vmlinux); vmscope needs CONFIG_DEBUG_INFO_BTF" >&2; exit 1; }
