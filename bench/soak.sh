#!/bin/bash
# Issue 11, item 3: soak (not CI). Runs the agent for --minutes (default 30) under churn and
# checks afterwards that nothing grew, leaked or went missing.
#
# usage: bench/soak.sh [--minutes N] [--rate N] [--interval S] [--warmup S]
#                      [--outage-every S] [--outage-for S]
# Everything happens in a namespace of its own (bench/netns.sh: bridge vsbr0 with 40 pool
# taps, plus 8 flap taps), on loopback:
#   - --rate VM starts a minute (default 100), each VM living 3-30 s and stopped by SIGKILL,
#     SIGTERM or its own exit: solo5-hvt (albatross' argv) on a pool tap or on a tap of its
#     own, qemu on a pool tap (tests/helpers/tap_holder), qemu without a tap
#     (tests/helpers/busy_vm); bench/soak.py load, which logs every start and stop;
#   - taps flapping: a pool tap down and up every 2 s, a flap tap deleted and re-created
#     every 6 s;
#   - two outputs: a Telegraf-like TCP receiver that stays up (bench/soak.py receive) and a
#     private InfluxDB 1.x (tests/influx) stopped for --outage-for seconds (default 60) every
#     --outage-every seconds (default 180).
# Then it prints and checks: agent RSS after --warmup (default 10% of the run, at least 60 s)
# flat within 2 MiB (VmRSS every 5 s), open fds the same after the last stop as after
# warm-up, the agent's BPF map entries back at their baseline, every start and exit event
# exactly once on the TCP output (and as many in InfluxDB), no tick late by more than one
# interval. Exit 1 if a check fails, 2 if the set-up fails. Needs root; it uses only its
# own namespace, so it needs no /tmp/vmscope-root.lock.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VMSCOPE_BUILD:-$ROOT/build}
BIN=${VMSCOPE_BIN:-$BUILD/vmscope}
MINUTES=30 RATE=100 INTERVAL=1 WARMUP="" OUTAGE_EVERY=180 OUTAGE_FOR=60
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) MINUTES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --outage-every) OUTAGE_EVERY=$2; shift 2 ;;
    --outage-for) OUTAGE_FOR=$2; shift 2 ;;
    *) sed -n '4,21p' "$0" >&2; exit 2 ;;
  esac
done
[ -n "$WARMUP" ] || WARMUP=$(python3 -c "print(max(60, int($MINUTES * 6)))")
[ "$(id -u)" = 0 ] || { echo "soak.sh: needs root" >&2; exit 2; }
for f in "$BIN" "$BUILD/tests/tap_holder" "$BUILD/tests/busy_vm"; do
  [ -x "$f" ] || { echo "soak.sh: $f not built" >&2; exit 2; }
done
source "$ROOT/bench/netns.sh"
source "$ROOT/bench/agent.sh"

NS=vsb-soak-$$
PREFIX=soak$$x  # every VM name starts with it: the agent also sees other people's VMs
WORK=$(mktemp -d /tmp/vmscope-soak.XXXXXX)
TCP_PORT=18094 INFLUX_PORT=18096 POOL=40 FLAP=8
LINES=$WORK/lines.lp
AGENT="" LOAD="" RECEIVER=""
cleanup() {
  [ -n "$LOAD" ] && kill -9 "$LOAD" 2>/dev/null
  [ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
  "$ROOT/tests/influx/stop-influxdb.sh" --timeout 10 --dir "$WORK/influx" >/dev/null 2>&1
  if [ -e "/run/netns/$NS" ]; then
    # nsenter, not `ip netns exec`, which remounts /sys without the pins under /sys/fs/bpf.
    nsenter --net="/run/netns/$NS" "$BIN" cleanup >"$WORK/cleanup.log" 2>&1
    bench_netns_delete "$NS"  # the receiver and the VMs left go with it
  fi
  [ -n "${KEEP_WORK:-}" ] && cat "$WORK/cleanup.log" 2>/dev/null && echo "soak.sh: work files kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "$(date -u +%H:%M:%S) soak: $*"; }
influx_up() { "$ROOT/tests/influx/start-influxdb.sh" --dir "$WORK/influx" --port "$INFLUX_PORT" \
  --netns "$NS" --timeout 60 >/dev/null; }
influx_down() { "$ROOT/tests/influx/stop-influxdb.sh" --dir "$WORK/influx" --timeout 10 >/dev/null; }
fd_count() { ls "/proc/$AGENT/fd" 2>/dev/null | wc -l; }
# fd_kinds FILE: what the agent's fds are (sockets, bpf maps, links, ...), counted by kind.
fd_kinds() {
  for f in /proc/$AGENT/fd/*; do
    readlink "$f" | sed 's/:\[[0-9]*\]$//; s/^\/.*/file/'
  done | sort | uniq -c >"$1"
}
count() {  # count QUERY: the first value of the first series, 0 when there is none
  bench_influx_query "$NS" "$INFLUX_PORT" soak "$1" | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0].get("series")
print(s[0]["values"][0][1] if s else 0)'
}

# --- set-up: namespace, taps, outputs, agent ---
bench_netns_create "$NS" "$POOL" || { echo "soak.sh: cannot create netns" >&2; exit 2; }
pool=() flap=()
for ((i = 0; i < POOL; i++)); do pool+=("$(printf vbt%05d "$i")"); done
for ((i = 0; i < FLAP; i++)); do
  flap+=("vfl$i")
  ip -n "$NS" tuntap add mode tap name "vfl$i" && ip -n "$NS" link set "vfl$i" master vsbr0 up
done
ip netns exec "$NS" python3 "$ROOT/bench/soak.py" receive "$TCP_PORT" "$LINES" &
RECEIVER=$!
disown "$RECEIVER"
influx_up || exit 2
ip netns exec "$NS" curl -sS -XPOST "http://127.0.0.1:$INFLUX_PORT/query" \
  --data-urlencode 'q=CREATE DATABASE soak' >/dev/null
# `ip netns exec` execs the command: $! is the agent itself.
ip netns exec "$NS" "$BIN" run --interval "$INTERVAL" --output "tcp://127.0.0.1:$TCP_PORT" \
  --output "http://127.0.0.1:$INFLUX_PORT/write?db=soak" --spool-dir "$WORK/spool" \
  >/dev/null 2>"$WORK/agent.log" &
AGENT=$!
want_taps=$((POOL + FLAP))
for ((t = 0; t < 120; t++)); do
  [ "$(bench_self_field "$LINES" taps)" = "$want_taps" ] && break
  kill -0 "$AGENT" 2>/dev/null || { echo "soak.sh: agent exited" >&2; tail "$WORK/agent.log" >&2; exit 2; }
  sleep 1
done
[ "$(bench_self_field "$LINES" taps)" = "$want_taps" ] ||
  { echo "soak.sh: the agent never reported $want_taps taps" >&2; exit 2; }
sleep $((3 * INTERVAL))
python3 "$ROOT/bench/soak.py" maps "$AGENT" "$WORK/maps-before.json" || exit 2
self_base=$(($(grep -c '^vmscope,' "$LINES") - 1))  # the last line before the first start
fds_before=$(fd_count)
fd_kinds "$WORK/fds-before"
say "agent pid $AGENT in netns $NS, $want_taps taps; baseline maps $(cat "$WORK/maps-before.json" | cut -c1-120)"

# --- the run ---
ip netns exec "$NS" python3 "$ROOT/bench/soak.py" load --minutes "$MINUTES" --rate "$RATE" \
  --prefix "$PREFIX" --pool "${pool[@]}" --flap "${flap[@]}" --bridge vsbr0 \
  --tap-holder "$BUILD/tests/tap_holder" --busy-vm "$BUILD/tests/busy_vm" --log "$WORK/load.log" &
LOAD=$!
start=$(date +%s)
warm_until=$((start + WARMUP))
say "load started: $MINUTES min, $RATE VM starts/min, warm-up $WARMUP s, InfluxDB down $OUTAGE_FOR s every $OUTAGE_EVERY s"
influx_is_up=1 outages=0
while kill -0 "$LOAD" 2>/dev/null; do
  now=$(date +%s)
  el=$((now - start))
  phase=$((el % OUTAGE_EVERY))
  if [ "$influx_is_up" = 1 ] && [ "$phase" -ge $((OUTAGE_EVERY - OUTAGE_FOR)) ]; then
    influx_down; influx_is_up=0; outages=$((outages + 1))
    say "InfluxDB stopped (outage $outages); spool $(bench_self_field "$LINES" spool_bytes) B"
  elif [ "$influx_is_up" = 0 ] && [ "$phase" -lt $((OUTAGE_EVERY - OUTAGE_FOR)) ]; then
    influx_up || say "InfluxDB did not start again"
    influx_is_up=1
    say "InfluxDB started; spool $(bench_self_field "$LINES" spool_bytes) B, RSS $(bench_rss_kib "$AGENT") KiB"
  fi
  ((el % 5 == 0)) && echo "$now $(bench_rss_kib "$AGENT") $(fd_count)" >>"$WORK/samples"
  kill -0 "$AGENT" 2>/dev/null || { say "agent exited during the run"; tail "$WORK/agent.log"; exit 1; }
  sleep 1
done
wait "$LOAD"
LOAD=""
load_end=$(date +%s)
say "load done: $(tail -n 1 "$WORK/load.log")"

# --- afterwards: every output up, spool replayed, a few ticks, then the final state ---
[ "$influx_is_up" = 1 ] || { influx_up; influx_is_up=1; }
for ((t = 0; t < 300; t++)); do
  [ "$(bench_self_field "$LINES" spool_batches)" = 0 ] && break
  sleep 1
done
sleep $((5 * INTERVAL))  # the service sweep (3 s) and a tick with every VM gone
echo "$(date +%s) $(bench_rss_kib "$AGENT") $(fd_count)" >>"$WORK/samples"
fds_after=$(fd_count)
fd_kinds "$WORK/fds-after"
[ "$fds_after" = "$fds_before" ] || { echo "soak: agent fds before the first start and after the last stop:"; diff "$WORK/fds-before" "$WORK/fds-after"; }
python3 "$ROOT/bench/soak.py" maps "$AGENT" "$WORK/maps-after.json" || exit 2
kill -TERM "$AGENT"
wait "$AGENT"
agent_rc=$?
AGENT=""
sleep 2  # the receiver writes what the agent flushed at exit
say "agent exit status $agent_rc; log: $(grep -c '\] \[warning\]' "$WORK/agent.log") warnings," \
  "$(grep -c '\] \[error\]' "$WORK/agent.log") errors"
grep -E '\] \[(warning|error)\]' "$WORK/agent.log" | sed 's/^[^]]*\] //' | sort | uniq -c |
  sort -rn | head -8

# InfluxDB got the same events and ticks, across its outages (spool replay).
influx_events=$(count "SELECT count(pid) FROM vm_event WHERE vm =~ /^$PREFIX/")
influx_ticks=$(count 'SELECT count(tick_ns) FROM vmscope')
tcp_events=$(grep -c "^vm_event,.*vm=$PREFIX" "$LINES")
tcp_ticks=$(grep -cE '^vmscope[ ,]' "$LINES")
say "outputs: TCP receiver $(cat "$LINES.count") lines, $tcp_events events, $tcp_ticks ticks;" \
  "InfluxDB ($outages outages of $OUTAGE_FOR s) $influx_events events, $influx_ticks ticks"

python3 "$ROOT/bench/soak.py" check --prefix "$PREFIX" --log "$WORK/load.log" --lines "$LINES" \
  --samples "$WORK/samples" --interval "$INTERVAL" --warm-until "$warm_until" \
  --load-end "$load_end" --fds-before "$fds_before" --fds-after "$fds_after" --self-base "$self_base" \
  --maps-before "$WORK/maps-before.json" --maps-after "$WORK/maps-after.json"
rc=$?
if [ "$influx_events" = "$tcp_events" ] && [ "$influx_ticks" = "$tcp_ticks" ]; then
  echo "soak: PASS InfluxDB (down and up again) got every event and tick the TCP output got"
else
  echo "soak: FAIL InfluxDB (down and up again) got $influx_events events and $influx_ticks ticks, the TCP output $tcp_events and $tcp_ticks"
  rc=1
fi
[ "$agent_rc" = 0 ] || { echo "soak: FAIL agent exit status $agent_rc"; rc=1; }
exit $rc
