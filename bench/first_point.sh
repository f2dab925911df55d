#!/bin/bash
# Issue 9, item 3: the first point after a (re)start at 1,000 VMs, with tcx and with
# clsact (not CI; figures in RESULTS.md).
#
# usage: bench/first_point.sh [--taps N] [--runs R]
# Creates a namespace with N taps on bridges (bench/netns.sh), then for each attach mode:
# a cold start (after `vmscope cleanup`: load, attach every device) and R restarts (the
# previous run's kept state adopted: maps reused, programs swapped in place). Each time it
# reports the milliseconds from exec to the first line on stdout. Exit 1 when any start
# took more than 1 s. Run under `flock /tmp/vmscope-root.lock`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${VMSCOPE_BIN:-$ROOT/build/vmscope}
TAPS=1000 RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --taps) TAPS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) sed -n '4,10p' "$0" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "first_point.sh: needs root" >&2; exit 2; }
[ -x "$BIN" ] || { echo "first_point.sh: $BIN not built" >&2; exit 2; }
source "$ROOT/bench/netns.sh"

NS=vsb-first-$$
LOG=$(mktemp /tmp/vmscope-first-point.XXXXXX)
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
cleanup() {
  in_ns "$BIN" cleanup >/dev/null 2>&1
  bench_netns_delete "$NS"
  rm -f "$LOG"
}
trap cleanup EXIT
bench_netns_create "$NS" "$TAPS" || exit 1

# Milliseconds from exec to the agent's first line; the agent then runs one more tick and
# stops as systemd would stop it (its kept state stays for the next start).
first_point_ms() {
  local t0 t1 line
  t0=$(date +%s%N)
  {
    IFS= read -r line
    t1=$(date +%s%N)
    cat >/dev/null
  } < <(in_ns "$BIN" run --attach "$1" --interval 1 --count 2 --output - 2>>"$LOG")
  wait
  echo $(((t1 - t0) / 1000000))
}

# After cleanup the kernel releases the old links and filters in the background (each an
# RCU grace period under the RTNL lock): wait until no vmscope program is left loaded, or
# the next start would measure that instead of itself.
settle() {
  local progs
  for _ in $(seq 900); do
    # bpftool fails when a program goes while it lists them: that is not "none left".
    if progs=$(bpftool prog show 2>/dev/null) && ! grep -q "name vs_tc_" <<<"$progs"; then
      return 0
    fi
    sleep 0.1
  done
}

# Seconds from exec until a cold start has attached every device (it ticks meanwhile).
all_attached_s() {
  local t0 t1 log=$LOG.all
  t0=$(date +%s%N)
  # nsenter execs the agent: $! is the agent itself.
  nsenter --net="/run/netns/$NS" "$BIN" run --attach "$1" --interval 1 --output - \
    --log-level info >/dev/null 2>"$log" &
  local pid=$!
  for _ in $(seq 1200); do
    grep -q "VM taps and bridges attached" "$log" && break
    sleep 0.05
  done
  t1=$(date +%s%N)
  kill -TERM $pid
  wait $pid 2>/dev/null
  rm -f "$log"
  echo "$(((t1 - t0) / 1000000)) ms"
}

slow=0
echo "first point after start, $TAPS taps ($(in_ns ip -o link | wc -l) devices), load $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in tcx clsact; do
  in_ns "$BIN" cleanup >/dev/null 2>&1
  settle
  full=$(all_attached_s "$mode")
  in_ns "$BIN" cleanup >/dev/null 2>&1
  settle
  cold=$(first_point_ms "$mode")
  restarts=()
  for ((r = 0; r < RUNS; r++)); do restarts+=("$(first_point_ms "$mode")"); done
  echo "$mode: cold start ${cold} ms (every device attached after $full); restarts (kept state adopted) ${restarts[*]} ms"
  for ms in "$cold" "${restarts[@]}"; do ((ms > 1000)) && slow=1; done
done
grep -E "warn|error" "$LOG" | grep -v "✗" | head -5
exit $slow
