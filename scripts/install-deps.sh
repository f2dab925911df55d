#!/usr/bin/env bash
# Installs every Debian 12 package vmscope needs to build, run and test. Idempotent.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root (apt-get)" >&2; exit 1; }

PACKAGES=(
  # build
  build-essential cmake pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev libcurl4-openssl-dev libmnl-dev
  libncurses-dev clang-format
  # tests and benchmarks
  libgtest-dev libbenchmark-dev influxdb qemu-system-x86 linux-image-amd64 busybox-static
  iperf3 iproute2 curl tmux procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The influxdb package enables its own server; tests start private instances instead.
if systemctl is-active --quiet influxdb 2>/dev/null; then systemctl stop influxdb || true; fi
