#!/usr/bin/env bash
# Configures and builds with warnings as errors (VMSCOPE_WERROR=ON).
#   build.sh [--tests] [--dir DIR] [--target T]... [-- CMAKE_ARGS...]
# Without --tests: the agent alone (no test or benchmark libraries needed), target vmscope.
# With --tests: tests and benchmarks too, every target unless --target names some.
# DIR defaults to build/ at the top of the tree; ccache is used when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=OFF dir=build targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tests) tests=ON; shift ;;
    --dir) dir=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$tests" = ON ] || [ ${#targets[@]} -gt 0 ] || targets=(vmscope)
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMSCOPE_WERROR=ON \
  -DVMSCOPE_TESTS="$tests" -DVMSCOPE_BENCH="$tests" "${launcher[@]}" "$@" >/dev/null
build_args=()
for t in "${targets[@]}"; do build_args+=(--target "$t"); done
cmake --build "$dir" -j"$(nproc)" "${build_args[@]}"
