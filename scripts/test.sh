#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test run, as root (or with sudo):
#   bash scripts/test.sh
# Unit tests, then root tests: network namespaces, taps, a real qemu VM and a real
# InfluxDB 1.6, all started by the tests themselves on loopback / in namespaces. Then a
# second build of every target the way a Debian package is built (clang++, Release,
# dpkg-buildflags' hardening flags), and its unit tests: the tree must build wherever it
# is packaged.
set -euo pipefail
here="$(dirname "$0")"
source "$here/as-root.sh"
bash "$here/install-deps.sh" --tests
bash "$here/setup-kernel.sh"
bash "$here/build.sh" --tests
# Root tests are RUN_SERIAL: they never overlap with each other or with unit tests.
ctest --test-dir "$here/../build" --output-on-failure -j2 --timeout 600

# debhelper folds CPPFLAGS (-D_FORTIFY_SOURCE=2) into CFLAGS/CXXFLAGS: CMake ignores them.
flags() { echo "$(dpkg-buildflags --get "$1") $(dpkg-buildflags --get CPPFLAGS)"; }
start=$(date +%s)
bash "$here/build.sh" --tests --dir build-deb -- \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS="$(flags CFLAGS)" -DCMAKE_CXX_FLAGS="$(flags CXXFLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)"
ctest --test-dir "$here/../build-deb" --output-on-failure -j2 -L unit -E '^deploy\.'
echo "test.sh: clang++ Release build with dpkg-buildflags and its unit tests: $(($(date +%s) - start)) s"
