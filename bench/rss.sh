#!/bin/bash
# Goal 3: agent RSS <= 30 MiB with 1000 VM taps (<= 64 MiB with 10,000: --limit-mib 64).
#
# usage: bench/rss.sh [--netns NAME] [--taps N] [--limit-mib M] [-- extra vmscope run options]
#   --netns NAME  use an existing namespace holding the taps (run.sh passes its own);
#                 default: create one with --taps taps (1000) and delete it afterwards.
#   --limit-mib M the VmHWM target (default 30).
#   --key NAME    the name of the RATIO line (default rss_hwm_over_limit).
# Runs `vmscope run --interval 1 --count 5 --output -` (stdout to /dev/null) inside the
# namespace, samples /proc/<pid>/status every 0.1 s while it runs, and reports the peak
# (VmHWM) and the last VmRSS seen against the limit. Exit status 1 if VmHWM > the limit.
# RSS_SMAPS=FILE: keep /proc/<agent>/smaps of the peak sample there.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${VMSCOPE_BIN:-$ROOT/build/vmscope}
LIMIT_MIB=30 KEY=rss_hwm_over_limit
NS="" TAPS=1000 OWN_NS=0 VMS=0
BUSY=${VMSCOPE_BUSY_VM:-$ROOT/build/tests/busy_vm}
VM_PIDS=()
EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --netns) NS=$2; shift 2 ;;
    --taps) TAPS=$2; shift 2 ;;
    --limit-mib) LIMIT_MIB=$2; shift 2 ;;
    --key) KEY=$2; shift 2 ;;
    --vms) VMS=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "usage: $0 [--netns NAME] [--taps N] [--limit-mib M] [--key NAME] [--vms N] [-- vmscope run options]" >&2; exit 2 ;;
  esac
done
LIMIT_KIB=$((LIMIT_MIB * 1024))
[ "$(id -u)" = 0 ] || { echo "rss.sh: needs root" >&2; exit 2; }
[ -x "$BIN" ] || { echo "rss.sh: $BIN not built" >&2; exit 2; }
source "$ROOT/bench/netns.sh"

LOG=$(mktemp /tmp/vmscope-rss.XXXXXX)
AGENT=""
cleanup() {
  [ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
  [ ${#VM_PIDS[@]} -gt 0 ] && kill -9 "${VM_PIDS[@]}" 2>/dev/null
  [ "$OWN_NS" = 1 ] && bench_netns_delete "$NS"
  rm -f "$LOG" "$LOG.fifo" "$LOG.self"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$NS" ]; then
  NS=vsb-rss-$$
  OWN_NS=1
  bench_netns_create "$NS" "$TAPS" || { echo "rss.sh: cannot create netns" >&2; exit 2; }
fi
ntaps=$(ip -n "$NS" -o link show type tun | wc -l)

# --vms N: N idle processes the agent names and tracks as qemu VMs (tests/helpers/busy_vm
# with a qemu argv), so that its process side holds as many VMs as there are taps.
if [ "$VMS" -gt 0 ]; then
  [ -x "$BUSY" ] || { echo "rss.sh: $BUSY not built (cmake --build build --target busy_vm)" >&2; exit 2; }
  for ((i = 0; i < VMS; i++)); do
    BUSY_MB=0 BUSY_THREADS=0 bash -c 'exec -a qemu-system-x86_64 "$0" -name "guest=rssvm$1" -m 64' \
      "$BUSY" "$i" >/dev/null 2>&1 &
    VM_PIDS+=($!)
    disown  # no "Killed" line for each at the end
  done
fi

start=$(date +%s.%N)
# `ip netns exec` execs the command: $! is the agent itself. Its lines go to a FIFO read
# by grep, which keeps only the self-metrics line (vms=, taps=).
FIFO=$LOG.fifo
mkfifo "$FIFO"
grep -a '^vmscope ' <"$FIFO" >"$LOG.self" &
SELF_GREP=$!
ip netns exec "$NS" "$BIN" run --interval 1 --count 5 --output - "${EXTRA[@]}" \
  >"$FIFO" 2>"$LOG" &
AGENT=$!

hwm=0 rss=0 max_rss=0 samples=0 peak_parts=""
while kill -0 "$AGENT" 2>/dev/null; do
  if status=$(cat "/proc/$AGENT/status" 2>/dev/null); then
    h=$(awk '/^VmHWM:/ {print $2}' <<<"$status")
    r=$(awk '/^VmRSS:/ {print $2}' <<<"$status")
    if [ -n "$h" ] && [ -n "$r" ]; then  # empty once the process is a zombie
      hwm=$h rss=$r
      if [ "$r" -gt "$max_rss" ]; then
        max_rss=$r
        # What the peak is made of: heap and stacks (anon), mapped BPF maps and rings
        # (file: their pages are the kernel's), shared memory.
        peak_parts=$(awk '/^Rss(Anon|File|Shmem):/ {printf "%s%s %d KiB", sep, $1, $2; sep=", "}' <<<"$status")
        [ -n "${RSS_SMAPS:-}" ] && cp "/proc/$AGENT/smaps" "$RSS_SMAPS" 2>/dev/null
      fi
      samples=$((samples + 1))
    fi
  fi
  sleep 0.1
done
wait "$AGENT"
rc=$?
AGENT=""
elapsed=$(echo "$(date +%s.%N) - $start" | bc)

if [ "$rc" != 0 ]; then
  echo "rss.sh: vmscope exited with $rc:" >&2
  tail -20 "$LOG" >&2
  exit 1
fi
monitoring=$(grep -c "monitoring " "$LOG" || true)
# Start-up (link dump, owner scan, attaching every device) until the first tick can run.
running_ts=$(grep -m1 "vmscope running" "$LOG" | cut -d' ' -f1)
if [ -n "$running_ts" ]; then
  startup=$(echo "$(date -d "$running_ts" +%s.%N) - $start" | bc)
  printf 'rss: agent start-up until "vmscope running": %.1f s (mode: %s)\n' "$startup" \
    "$(grep -o -m1 'attaching network programs with [a-z]*' "$LOG" | awk '{print $NF}')"
fi
wait "$SELF_GREP"  # ends as the agent closes the FIFO
vms=$(grep -o 'vms=[0-9]*i' "$LOG.self" | tail -1 | tr -dc 0-9)
ticks_ms=$(grep -o 'tick_ns=[0-9]*i' "$LOG.self" | tr -dc '0-9\n' | awk '{printf "%s%.1f", sep, $1 / 1e6; sep=" "}')
echo "rss: tick_ns of each tick (ms, with the waits for the output): $ticks_ms"
printf 'rss: %d taps in netns %s, agent monitored %d devices and %s VM processes, ran %.1f s, %d samples\n' \
  "$ntaps" "$NS" "$monitoring" "${vms:-0}" "$elapsed" "$samples"
printf 'rss: VmHWM %d KiB (%.1f MiB), last VmRSS %d KiB, max sampled VmRSS %d KiB; limit %d KiB (%d MiB)\n' \
  "$hwm" "$(echo "$hwm / 1024" | bc -l)" "$rss" "$max_rss" "$LIMIT_KIB" "$LIMIT_MIB"
echo "rss: at the peak sample: $peak_parts"
ratio=$(echo "scale=4; $hwm / $LIMIT_KIB" | bc)
if [ "$hwm" -gt 0 ] && [ "$hwm" -le "$LIMIT_KIB" ]; then
  echo "RATIO $KEY $ratio max 1.00 PASS"
  exit 0
fi
echo "RATIO $KEY $ratio max 1.00 MISS"
exit 1
