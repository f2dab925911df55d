#!/bin/bash
# One command for all vmscope performance goals (see bench/RESULTS.md):
#   builds vmscope and vmscope_bench, creates a network namespace with 1000 taps on a
#   bridge, runs the benchmarks (goals 1 and 2, as ratios against baselines measured in the
#   same run), runs bench/rss.sh (goal 3) in the same namespace, deletes the namespace.
#   Then the scale goals: a namespace with 10,000 taps (--scale N) on bridges of 1000
#   ports, the whole tick there (10,000 sleepers as VM processes) against the 1000-VM
#   whole tick, alternating (median of five pairs <= 10x, caches cold as in the agent;
#   warm beside it) and the agent's RSS there with a VM process per tap (<= 64 MiB); and bench/
#   throughput.sh (iperf3 with and without the agent, >= 98%).
# Exit status: 0 every target met, 1 a target missed (or a benchmark failed), 2 setup error.
#
# usage: bench/run.sh [--no-build] [--taps N] [--scale N|0] [--no-throughput]
#                     [extra vmscope_bench flags...]
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
TAPS=1000 SCALE=10000 DO_BUILD=1 THROUGHPUT=1
BENCH_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) DO_BUILD=0; shift ;;
    --taps) TAPS=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --no-throughput) THROUGHPUT=0; shift ;;
    *) BENCH_ARGS+=("$1"); shift ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (BPF, network namespaces)" >&2; exit 2; }
source "$ROOT/bench/netns.sh"

if [ "$DO_BUILD" = 1 ]; then
  # Others may be mid-edit: retry a failing build a few times before giving up.
  for attempt in 1 2 3; do
    cmake -S "$ROOT" -B "$BUILD" -DVMSCOPE_BENCH=ON >/dev/null &&
      cmake --build "$BUILD" -j2 --target vmscope vmscope_bench busy_vm >/dev/null && break
    [ "$attempt" = 3 ] && { echo "run.sh: build failed" >&2; exit 2; }
    echo "run.sh: build failed (attempt $attempt), retrying in 60 s" >&2
    sleep 60
  done
fi

NS=vsb-run-$$ NS_SCALE=vsb-scale-$$
OUT=/tmp/vmscope-bench-$$.out
t0=$(date +%s)
cleanup() {
  bench_netns_delete "$NS"
  bench_netns_delete "$NS_SCALE"
  rm -f "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== $(date -u +%FT%TZ)  $(uname -r)  $(nproc) CPUs  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== netns $NS with $TAPS taps on bridges of $BENCH_TAPS_PER_BRIDGE ports"
bench_netns_create "$NS" "$TAPS" || { echo "run.sh: cannot create netns" >&2; exit 2; }

echo "== goals 1 and 2: $BUILD/bench/vmscope_bench"
"$BUILD/bench/vmscope_bench" --netns "$NS" --benchmark_color=false "${BENCH_ARGS[@]}" \
  | tee "$OUT"
bench_rc=${PIPESTATUS[0]}

echo "== goal 3: bench/rss.sh"
"$ROOT/bench/rss.sh" --netns "$NS" | tee -a "$OUT"
rss_rc=${PIPESTATUS[0]}

scale_rc=0
if [ "$SCALE" -gt 0 ]; then
  echo "== scale: netns $NS_SCALE with $SCALE taps on bridges of $BENCH_TAPS_PER_BRIDGE ports"
  if bench_netns_create "$NS_SCALE" "$SCALE"; then
    # The whole tick only (network + processes). The goal is judged cold: the agent ticks
    # once per interval, and between two ticks the VMs use the caches, so a tick finds
    # little of the kernel's task and device structures (nor its own state) there, at
    # 1,000 VMs as at 10,000. Warm (the same tick repeated back to back) is reported
    # beside it: at 1,000 VMs all of it stays cached, at 10,000 it cannot
    # (bench/RESULTS.md). The two sizes alternate, five pairs, each ratio against the
    # 1,000-VM run just before it, and the median is judged: the machine's drift over
    # minutes then falls on both sides of a ratio.
    cold_filter='^(tick_cold|proc_tick_cold)/vmscope_collect_encode'
    both_filter='^(tick|proc_tick|tick_cold|proc_tick_cold)/vmscope_collect_encode'
    ratios=()
    # Five, not three: a cold 10,000-VM tick moves by +-15 % from run to run here (25-35
    # ms), and the ratio sits near 9 (per VM, a cold tick costs the same at both sizes).
    PAIRS=5
    for ((pair = 1; pair <= PAIRS; pair++)); do
      small=$("$BUILD/bench/vmscope_bench" --netns "$NS" --sleepers "$TAPS" \
        --benchmark_color=false --benchmark_filter="$cold_filter" |
        awk '/^INFO whole_tick_cold_ms/ {print $3}')
      filter=$cold_filter
      [ "$pair" = 1 ] && filter=$both_filter
      "$BUILD/bench/vmscope_bench" --netns "$NS_SCALE" --sleepers "$SCALE" \
        --benchmark_color=false --benchmark_filter="$filter" >"$OUT.scale"
      [ $? = 0 ] || scale_rc=1
      grep -E '^(setup|INFO whole_tick)' "$OUT.scale" | sed 's/^INFO whole_tick/INFO scale_whole_tick/' |
        sed "s/\$/ (pair $pair)/" | tee -a "$OUT"
      large=$(awk '/^INFO whole_tick_cold_ms/ {print $3}' "$OUT.scale")
      if [ "$pair" = 1 ]; then
        small_warm=$(awk '/^INFO whole_tick_ms/ {print $3}' "$OUT")
        large_warm=$(awk '/^INFO whole_tick_ms/ {print $3}' "$OUT.scale")
        if [ -n "$small_warm" ] && [ -n "$large_warm" ]; then
          echo "RATIO tick_${SCALE}_over_${TAPS}_warm $(awk -v a="$large_warm" -v b="$small_warm" \
            'BEGIN {printf "%.2f", a / b}') (informational)" | tee -a "$OUT"
        fi
      fi
      if [ -n "$small" ] && [ -n "$large" ]; then
        ratios+=("$(awk -v a="$large" -v b="$small" 'BEGIN {printf "%.2f", a / b}')")
        echo "INFO pair $pair: ${TAPS} VMs ${small} ms, ${SCALE} VMs ${large} ms, cold" | tee -a "$OUT"
      fi
    done
    rm -f "$OUT.scale"
    if [ ${#ratios[@]} = "$PAIRS" ]; then
      ratio=$(printf '%s\n' "${ratios[@]}" | sort -g | sed -n "$(((PAIRS + 1) / 2))p")
      verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 10) ? "PASS" : "MISS"}')
      echo "RATIO tick_${SCALE}_over_${TAPS} $ratio max 10 $verdict (median of ${ratios[*]})" | tee -a "$OUT"
      [ "$verdict" = PASS ] || scale_rc=1
    else
      echo "RATIO tick_${SCALE}_over_${TAPS} not measured MISS" | tee -a "$OUT"
      scale_rc=1
    fi
    # clsact: tcx would take minutes to attach 20,000 links here (see RESULTS.md). With a
    # VM process per tap, as a host of that many VMs has.
    "$ROOT/bench/rss.sh" --netns "$NS_SCALE" --limit-mib 64 --key "rss_hwm_${SCALE}_over_limit" \
      --vms "$SCALE" -- --attach clsact | tee -a "$OUT"
    [ "${PIPESTATUS[0]}" = 0 ] || scale_rc=1
    bench_netns_delete "$NS_SCALE"
  else
    echo "run.sh: cannot create netns $NS_SCALE" >&2
    scale_rc=2
  fi
fi

bench_netns_delete "$NS"

tp_rc=0
if [ "$THROUGHPUT" = 1 ]; then
  echo "== throughput: bench/throughput.sh"
  # --modeled: judged on the tc programs' measured share of the CPU-bound path's CPU; the
  # direct with/without medians (INFO) cannot resolve 2 % on this machine (A/A +-3 %).
  "$ROOT/bench/throughput.sh" --modeled | tee -a "$OUT"
  tp_rc=${PIPESTATUS[0]}
fi

echo
echo "==== targets ===="
grep -E '^(RATIO|INFO)' "$OUT"
echo "total $(($(date +%s) - t0)) s"
if [ "$bench_rc" -ge 2 ] || [ "$rss_rc" -ge 2 ] || [ "$scale_rc" -ge 2 ] || [ "$tp_rc" -ge 2 ]; then
  exit 2
fi
if [ "$bench_rc" != 0 ] || [ "$rss_rc" != 0 ] || [ "$scale_rc" != 0 ] || [ "$tp_rc" != 0 ]; then
  echo "RESULT: a target was missed"
  exit 1
fi
echo "RESULT: all targets met"
exit 0
