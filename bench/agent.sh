# Sourced by outage.sh and soak.sh: reading a running agent from outside.

# bench_self_field FILE NAME: the integer field NAME of the last `vmscope` line (the
# agent's self-metrics) in the line-protocol FILE; empty before the first one.
bench_self_field() {
  tac "$1" 2>/dev/null | grep -m1 -E '^vmscope[ ,]' | tr ' ,' '\n\n' | sed -n "s/^$2=\([0-9]*\)i\$/\1/p"
}

# bench_rss_kib PID: VmRSS of the process in KiB (0 once it is gone).
bench_rss_kib() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# bench_influx_query NS PORT DB QUERY: the JSON answer of an InfluxDB 1.x in namespace NS.
bench_influx_query() {
  ip netns exec "$1" curl -sS -m 60 -G "http://127.0.0.1:$2/query" --data-urlencode "db=$3" \
    --data-urlencode "q=$4"
}
