#!/bin/bash
# Stop a VM started by run-vm.sh.
#
#   tests/vm/stop-vm.sh --pidfile FILE [--timeout SEC]
#
# SIGTERM, wait up to --timeout seconds (default 10), then SIGKILL; waits for
# the process to be gone and removes the pidfile. Only kills a pid whose comm
# starts with "qemu". Exit 0 if the VM is gone (or was not running).
set -euo pipefail

pidfile="" timeout=10
while [ $# -gt 0 ]; do
    case "$1" in
        --pidfile) pidfile=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        *) echo "stop-vm: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$pidfile" ] || { echo "stop-vm: --pidfile is required" >&2; exit 2; }
[ -e "$pidfile" ] || { echo "stop-vm: no pidfile $pidfile (not running?)" >&2; exit 0; }

pid=$(tr -d ' \n' < "$pidfile" || true)
if ! [[ "$pid" =~ ^[0-9]+$ ]]; then
    echo "stop-vm: bad pidfile content '$pid'" >&2; rm -f "$pidfile"; exit 0
fi
alive() { [ -d "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; }
if ! alive; then rm -f "$pidfile"; exit 0; fi
case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
    qemu*) ;;
    *) echo "stop-vm: pid $pid is not qemu ($(cat /proc/$pid/comm 2>/dev/null)), not killing" >&2
       rm -f "$pidfile"; exit 1 ;;
esac

kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq $((timeout * 10))); do alive || break; sleep 0.1; done
if alive; then
    echo "stop-vm: pid $pid still alive after ${timeout}s, SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive || break; sleep 0.1; done
fi
rm -f "$pidfile"
if alive; then echo "stop-vm: pid $pid did not exit" >&2; exit 1; fi
exit 0
