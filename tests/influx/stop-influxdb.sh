#!/bin/bash
# Stop an InfluxDB started by start-influxdb.sh.
#
#   tests/influx/stop-influxdb.sh --dir DIR [--timeout SEC] [--purge]
#
# SIGTERM the pid in DIR/influxd.pid, wait up to --timeout seconds (default
# 15), then SIGKILL; waits until it is gone. --purge also removes DIR.
# Only kills a pid whose comm is influxd. Exit 0 if it is gone.
set -euo pipefail

dir="" timeout=15 purge=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --purge) purge=1; shift ;;
        *) echo "stop-influxdb: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$dir" ] || { echo "stop-influxdb: --dir is required" >&2; exit 2; }
pidfile=$dir/influxd.pid

rc=0
pid=""
[ -s "$pidfile" ] && pid=$(tr -d ' \n' < "$pidfile" || true)
alive() { [ -d "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; }
if [[ "$pid" =~ ^[0-9]+$ ]] && alive; then
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = influxd ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $((timeout * 10))); do alive || break; sleep 0.1; done
        if alive; then
            echo "stop-influxdb: pid $pid still alive after ${timeout}s, SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do alive || break; sleep 0.1; done
        fi
        if alive; then echo "stop-influxdb: pid $pid did not exit" >&2; rc=1; fi
    else
        echo "stop-influxdb: pid $pid is not influxd, not killing" >&2
    fi
else
    echo "stop-influxdb: not running (no live pid in $pidfile)" >&2
fi
rm -f "$pidfile"
if [ "$purge" = 1 ] && [ "$rc" = 0 ]; then rm -rf "$dir"; fi
exit $rc
