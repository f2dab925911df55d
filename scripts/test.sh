#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test run (as root):
#   sudo bash scripts/test.sh
# Unit tests, then root tests: network namespaces, taps, a real qemu VM and a real
# InfluxDB 1.6, all started by the tests themselves on loopback / in namespaces.
set -euo pipefail
here="$(dirname "$0")"
bash "$here/install-deps.sh"
bash "$here/setup-kernel.sh"
bash "$here/build.sh"
cd "$here/../build"
# Root tests are RUN_SERIAL: they never overlap with each other or with unit tests.
ctest --output-on-failure -j2 --timeout 600
