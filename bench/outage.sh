#!/bin/bash
# Issue 9, item 6: a 5-minute InfluxDB outage at 1,000 VM taps loses no point (not CI).
#
# usage: bench/outage.sh [--taps N] [--outage SEC] [--port P]
# Creates a namespace with N taps on a bridge (bench/netns.sh, as run.sh does), starts a
# private InfluxDB 1.x there (tests/influx), runs `vmscope run --interval 1` writing to it
# with the default spool size (spool dir under /tmp), stops InfluxDB for --outage seconds
# (default 300), starts it again, waits until the spool has been replayed, and reports:
# points expected (every line the agent printed on stdout, its second output) against
# points found in InfluxDB, ticks expected and found, the per-tick line protocol and
# compressed spool sizes, peak spool size, and the agent's peak RSS. Exit 1 on any loss.
# Run under `flock /tmp/vmscope-root.lock`: it holds the machine for outage + ~2 minutes.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${VMSCOPE_BIN:-$ROOT/build/vmscope}
TAPS=1000 OUTAGE=300 PORT=18096
while [ $# -gt 0 ]; do
  case $1 in
    --taps) TAPS=$2; shift 2 ;;
    --outage) OUTAGE=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    *) sed -n '4,12p' "$0" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "outage.sh: needs root" >&2; exit 2; }
[ -x "$BIN" ] || { echo "outage.sh: $BIN not built" >&2; exit 2; }
source "$ROOT/bench/netns.sh"
source "$ROOT/bench/agent.sh"

NS=vsb-outage-$$
WORK=$(mktemp -d /tmp/vmscope-outage.XXXXXX)
AGENT=""
cleanup() {
  [ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
  "$ROOT/tests/influx/stop-influxdb.sh" --timeout 10 --dir "$WORK/influx" >/dev/null 2>&1
  bench_netns_delete "$NS"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

influx() { ip netns exec "$NS" curl -sS -m 60 "$@"; }
query() { bench_influx_query "$NS" "$PORT" vmscope "$1"; }
self_field() { bench_self_field "$WORK/self.lp" "$1"; }
rss_kib() { bench_rss_kib "$AGENT"; }

bench_netns_create "$NS" "$TAPS" || { echo "outage.sh: cannot create netns" >&2; exit 2; }
"$ROOT/tests/influx/start-influxdb.sh" --dir "$WORK/influx" --port "$PORT" --netns "$NS" \
  --timeout 30 || exit 2
influx -XPOST "http://127.0.0.1:$PORT/query" --data-urlencode 'q=CREATE DATABASE vmscope' >/dev/null

# stdout: every line is counted (bytes and lines per tick); the `vmscope` lines are kept.
ip netns exec "$NS" "$BIN" run --interval 1 --output "http://127.0.0.1:$PORT/write?db=vmscope" \
  --output - --spool-dir "$WORK/spool" 2>"$WORK/agent.log" \
  > >(awk -v self="$WORK/self.lp" -v sizes="$WORK/sizes" '
        { bytes += length($0) + 1; lines++ }
        /^vmscope / { print > self; fflush(self); print bytes, lines > sizes; fflush(sizes);
                      bytes = 0; lines = 0 }') &
AGENT=$!

# Attaching 1,000 taps takes from seconds to a minute (tcx, machine load): the outage
# starts after 10 ticks went through.
echo "== $TAPS taps, waiting for 10 ticks"
started=$(date +%s)
while [ "$(cat "$WORK/self.lp" 2>/dev/null | wc -l)" -lt 10 ]; do
  kill -0 "$AGENT" 2>/dev/null || { echo "outage.sh: agent exited" >&2; tail "$WORK/agent.log" >&2; exit 1; }
  [ $(($(date +%s) - started)) -lt 600 ] || { echo "outage.sh: no 10 ticks in 600 s" >&2; exit 1; }
  sleep 1
done
echo "== first 10 ticks after $(($(date +%s) - started)) s"
echo "== InfluxDB stopped for $OUTAGE s"
"$ROOT/tests/influx/stop-influxdb.sh" --dir "$WORK/influx" --timeout 10 >/dev/null
peak_spool=0 peak_batches=0 peak_rss=0
for ((t = 0; t < OUTAGE; t++)); do
  sleep 1
  b=$(self_field spool_bytes) n=$(self_field spool_batches) r=$(rss_kib)
  [ -n "$b" ] && [ "$b" -gt "$peak_spool" ] && peak_spool=$b && peak_batches=$n
  [ "$r" -gt "$peak_rss" ] && peak_rss=$r
done
echo "== InfluxDB started again; replaying"
"$ROOT/tests/influx/start-influxdb.sh" --dir "$WORK/influx" --port "$PORT" --netns "$NS" \
  --timeout 60 >/dev/null || exit 2
start=$(date +%s)
while [ "$(self_field spool_batches)" != 0 ] && [ $(($(date +%s) - start)) -lt 600 ]; do
  r=$(rss_kib)
  [ "$r" -gt "$peak_rss" ] && peak_rss=$r
  sleep 1
done
replay_s=$(($(date +%s) - start))
sleep 5
kill -TERM "$AGENT"
wait "$AGENT"
AGENT=""
sleep 1  # the awk behind the pipe finishes

ticks=$(wc -l <"$WORK/self.lp")
expected=$(awk '{s += $2} END {print s}' "$WORK/sizes")
bytes_tick=$(awk '{s += $1} END {printf "%d", s / NR}' "$WORK/sizes")
# Points per measurement: count(*) gives one column per field; every point has them all.
found=$(query 'SELECT count(*) FROM /.*/' | python3 -c '
import json, sys
total = 0
for s in json.load(sys.stdin)["results"][0].get("series", []):
    total += max(v for v in s["values"][0][1:] if v is not None)
print(total)')
found_ticks=$(query 'SELECT count(tick_ns) FROM vmscope' | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0].get("series")
print(s[0]["values"][0][1] if s else 0)')
dropped=$(self_field lines_dropped)
per_tick=$((peak_batches > 0 ? peak_spool / peak_batches : 0))

echo "outage: taps $TAPS, outage ${OUTAGE} s, interval 1 s"
echo "outage: line protocol per tick: $bytes_tick B; spooled (zlib) per tick: $per_tick B"
echo "outage: peak spool $peak_spool B in $peak_batches batches; replay took ${replay_s} s"
echo "outage: agent peak RSS $((peak_rss / 1024)) MiB"
echo "outage: ticks expected $ticks, found $found_ticks; points expected $expected, found $found"
echo "outage: lines_dropped (self-metrics) ${dropped:-?}"
grep -E "spool|output" "$WORK/agent.log" | head -10
[ "$found" = "$expected" ] && [ "$found_ticks" = "$ticks" ] || exit 1
