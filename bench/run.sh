#!/bin/bash
# One command for all vmscope performance goals (see bench/RESULTS.md):
#   builds vmscope and vmscope_bench, creates a network namespace with 1000 taps on a
#   bridge, runs the benchmarks (goals 1 and 2, as ratios against baselines measured in the
#   same run), runs bench/rss.sh (goal 3) in the same namespace, deletes the namespace.
# Exit status: 0 every target met, 1 a target missed (or a benchmark failed), 2 setup error.
#
# usage: bench/run.sh [--no-build] [--taps N] [extra vmscope_bench flags...]
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
TAPS=1000 DO_BUILD=1
BENCH_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) DO_BUILD=0; shift ;;
    --taps) TAPS=$2; shift 2 ;;
    *) BENCH_ARGS+=("$1"); shift ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (BPF, network namespaces)" >&2; exit 2; }
source "$ROOT/bench/netns.sh"

if [ "$DO_BUILD" = 1 ]; then
  # Others may be mid-edit: retry a failing build a few times before giving up.
  for attempt in 1 2 3; do
    cmake -S "$ROOT" -B "$BUILD" -DVMSCOPE_BENCH=ON >/dev/null &&
      cmake --build "$BUILD" -j2 --target vmscope vmscope_bench >/dev/null && break
    [ "$attempt" = 3 ] && { echo "run.sh: build failed" >&2; exit 2; }
    echo "run.sh: build failed (attempt $attempt), retrying in 60 s" >&2
    sleep 60
  done
fi

NS=vsb-run-$$
t0=$(date +%s)
cleanup() { bench_netns_delete "$NS"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== $(date -u +%FT%TZ)  $(uname -r)  $(nproc) CPUs  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== netns $NS with $TAPS taps on bridge vsbr0"
bench_netns_create "$NS" "$TAPS" || { echo "run.sh: cannot create netns" >&2; exit 2; }

echo "== goals 1 and 2: $BUILD/bench/vmscope_bench"
"$BUILD/bench/vmscope_bench" --netns "$NS" --benchmark_color=false "${BENCH_ARGS[@]}" \
  | tee /tmp/vmscope-bench-$$.out
bench_rc=${PIPESTATUS[0]}

echo "== goal 3: bench/rss.sh"
"$ROOT/bench/rss.sh" --netns "$NS" | tee -a /tmp/vmscope-bench-$$.out
rss_rc=${PIPESTATUS[0]}

echo
echo "==== targets ===="
grep -E '^(RATIO|INFO)' /tmp/vmscope-bench-$$.out
rm -f /tmp/vmscope-bench-$$.out
echo "total $(($(date +%s) - t0)) s"
if [ "$bench_rc" -ge 2 ] || [ "$rss_rc" -ge 2 ]; then exit 2; fi
if [ "$bench_rc" != 0 ] || [ "$rss_rc" != 0 ]; then
  echo "RESULT: a target was missed"
  exit 1
fi
echo "RESULT: all targets met"
exit 0
