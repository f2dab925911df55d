# Sourced by run.sh and rss.sh: a throwaway network namespace holding N persistent taps,
# enslaved to bridges (as albatross puts VM taps on a bridge), IPv6 off so that nothing
# sends traffic on its own. Created in one `ip -batch` (about 0.3 s for 1000).
#
# A Linux bridge holds at most 1024 ports (BR_MAX_PORTS; the next one fails with "Exchange
# full"), so the taps are spread over bridges of at most BENCH_TAPS_PER_BRIDGE (1000)
# ports: vsbr0 holds vbt00000..vbt00999, vsbr1 the next thousand, and so on.
BENCH_TAPS_PER_BRIDGE=${BENCH_TAPS_PER_BRIDGE:-1000}

# bench_netns_create NAME NTAPS
bench_netns_create() {
  local ns=$1 n=$2 batch br
  batch=$(mktemp /tmp/vmscope-bench-taps.XXXXXX)
  {
    for ((i = 0; i < n; i++)); do
      br=vsbr$((i / BENCH_TAPS_PER_BRIDGE))
      if ((i % BENCH_TAPS_PER_BRIDGE == 0)); then
        printf 'link add %s type bridge\nlink set %s up\n' "$br" "$br"
      fi
      printf 'tuntap add mode tap name vbt%05d\nlink set vbt%05d master %s up\n' "$i" "$i" "$br"
    done
  } >"$batch"
  ip netns add "$ns" || { rm -f "$batch"; return 1; }
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
  ip -n "$ns" -batch "$batch"
  local rc=$?
  rm -f "$batch"
  return $rc
}

# bench_netns_delete NAME: kills what still runs inside, then deletes it (taps go with it).
bench_netns_delete() {
  local ns=$1 pids
  [ -e "/run/netns/$ns" ] || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    kill -9 $pids 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  ip netns del "$ns"
}
