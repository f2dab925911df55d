#!/usr/bin/env bash
# Installs the Debian 12 packages vmscope needs. Idempotent.
#   install-deps.sh          what the agent needs to build and run
#   install-deps.sh --tests  that, and what the tests and benchmarks need
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root (apt-get)" >&2; exit 1; }

PACKAGES=(
  # build the agent: compilers (clang for the BPF objects), libraries, vmlinux.h/skeletons
  build-essential cmake pkg-config clang bpftool libbpf-dev libelf-dev zlib1g-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev libcurl4-openssl-dev libmnl-dev
  libncurses-dev
  # the Prometheus endpoint (--listen): a small HTTP server library
  libmicrohttpd-dev
  # run it: scripts/setup-kernel.sh mounts bpffs and tracefs
  mount util-linux
)
TEST_PACKAGES=(
  # test and benchmark libraries; clang-format for contributors
  libgtest-dev libbenchmark-dev clang-format
  # scripts/test.sh's sanitizer build and tests/fuzz/run.sh: clang's ASan, UBSan and
  # libFuzzer runtimes (libclang_rt.*)
  libclang-rt-14-dev
  # the test VM (tests/vm): qemu, a kernel and its modules, a busybox initramfs (xz
  # unpacks the kernel to boot it as a PVH ELF, binutils' readelf checks it)
  qemu-system-x86 linux-image-amd64 busybox-static cpio gzip xz-utils
  # InfluxDB 1.x for the end-to-end and deploy tests, reached with curl
  influxdb curl
  # the InfluxDB 2 API and bad-output tests make a throwaway CA and server certificate
  openssl
  # Prometheus 2.42 scraping the agent, and its promtool checking /metrics; python3 runs
  # dashboards/prometheus/generate.py --check
  prometheus python3
  # namespaces, taps, bridges, tc (ip, bridge, tc); ps, pgrep, sysctl; tmux drives `top`
  iproute2 procps tmux
  # deploy tests: CPack's deb generator runs `file`; systemd-analyze verifies the unit
  file systemd
)
if [ "${1:-}" = --tests ]; then PACKAGES+=("${TEST_PACKAGES[@]}"); fi

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
# The influxdb and prometheus packages enable their own servers; tests start private
# instances instead.
for unit in influxdb prometheus; do
  if systemctl is-active --quiet "$unit" 2>/dev/null; then systemctl stop "$unit" || true; fi
done
