#!/bin/bash
# Start the vmscope test VM (qemu, TCG) in the background inside a netns, attached
# to an existing tap, and wait until the guest prints VMSCOPE-VM-READY.
#
#   tests/vm/run-vm.sh --netns NS --tap TAP --name NAME --ip A.B.C.D/N \
#       --initrd FILE --kernel FILE --log FILE --pidfile FILE [--timeout SEC] \
#       [--gw A.B.C.D] [--ip6 ADDR/N] [--mac XX:XX:XX:XX:XX:XX] [--mem MB]
#
# The TAP must already exist in NS (e.g. `ip tuntap add TAP mode tap`, enslaved
# to a bridge and up). The serial console (and qemu's own stderr) go to --log,
# which is truncated first. qemu writes its pid to --pidfile.
# --ip6 gives the guest a static IPv6 address (kernel argument vmscope.ip6=).
# --netns "" runs qemu in the current namespace.
# Exit 0 when ready; 1 (with the log tail on stderr) on failure/timeout, in
# which case qemu is killed.
set -euo pipefail

die() { echo "run-vm: $*" >&2; exit 1; }
usage() { sed -n '2,16p' "$0" >&2; exit 2; }

netns=__unset__ tap="" name="" ip="" initrd="" kernel="" log="" pidfile="" timeout=90 gw="" ip6="" mac="" mem=192
while [ $# -gt 0 ]; do
    case "$1" in
        --netns) netns=$2; shift 2 ;;
        --tap) tap=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --ip) ip=$2; shift 2 ;;
        --initrd) initrd=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --pidfile) pidfile=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --gw) gw=$2; shift 2 ;;
        --ip6) ip6=$2; shift 2 ;;
        --mac) mac=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "run-vm: unknown argument $1" >&2; usage ;;
    esac
done
[ "$netns" != __unset__ ] || die "--netns is required (use --netns '' for the current namespace)"
for v in tap name ip initrd kernel log pidfile; do
    [ -n "${!v}" ] || die "--$v is required"
done
[[ "$ip" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "--ip must be A.B.C.D/N"
[ -z "$ip6" ] || [[ "$ip6" =~ ^[0-9a-fA-F:]+/[0-9]+$ ]] || die "--ip6 must be ADDR/N"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
[ -r "$initrd" ] || die "initrd $initrd not readable"
[ -r "$kernel" ] || die "kernel $kernel not readable"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found"

abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
initrd=$(abspath "$initrd"); kernel=$(abspath "$kernel")
log=$(abspath "$log"); pidfile=$(abspath "$pidfile")
mkdir -p "$(dirname "$log")" "$(dirname "$pidfile")"

nsexec=()
if [ -n "$netns" ]; then
    ip netns list | awk '{print $1}' | grep -qx -- "$netns" || die "netns $netns does not exist"
    nsexec=(ip netns exec "$netns")
fi
"${nsexec[@]}" ip link show dev "$tap" >/dev/null 2>&1 \
    || die "tap $tap does not exist in netns '${netns}'"

if [ -s "$pidfile" ]; then
    old=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$old" ] && kill -0 "$old" 2>/dev/null && grep -q qemu "/proc/$old/comm" 2>/dev/null; then
        die "pidfile $pidfile names a running qemu ($old)"
    fi
    rm -f "$pidfile"
fi

# Locally administered MAC derived from the VM name (stable across runs).
if [ -z "$mac" ]; then
    h=$(printf '%s' "$name" | md5sum | cut -c1-6)
    mac="52:54:00:${h:0:2}:${h:2:2}:${h:4:2}"
fi

append="console=ttyS0 vmscope.ip=$ip quiet panic=-1"
[ -n "$gw" ] && append="$append vmscope.gw=$gw"
[ -n "$ip6" ] && append="$append vmscope.ip6=$ip6"

: > "$log"
# -serial to the log file in append mode, so qemu's own stderr (also appended)
# lands in the same file without clobbering. -monitor none: no monitor on
# stdio (stdin is /dev/null). -no-reboot: a guest panic (panic=-1) ends qemu.
qemu=(qemu-system-x86_64
    -accel tcg
    -m "$mem"
    -nographic
    -nodefaults -no-user-config -vga none
    -monitor none
    -chardev "file,id=con0,path=$log,append=on"
    -serial chardev:con0
    -no-reboot
    -name "guest=$name,debug-threads=on"
    -pidfile "$pidfile"
    -kernel "$kernel" -initrd "$initrd" -append "$append"
    -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no"
    -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=")

start=$(date +%s.%N)
# setsid: own session, so the caller's terminal/process group signals do not
# reach it; all fds redirected so a caller reading our stdout is not held open.
setsid "${nsexec[@]}" "${qemu[@]}" </dev/null >>"$log" 2>&1 &
bgpid=$!

fail() {
    echo "run-vm: $*" >&2
    echo "---- last lines of $log ----" >&2
    tail -n 40 "$log" >&2 || true
    echo "----" >&2
    if kill -0 "$bgpid" 2>/dev/null; then
        kill "$bgpid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$bgpid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$bgpid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    exit 1
}

deadline=$(( $(date +%s) + timeout ))
while :; do
    if grep -q '^VMSCOPE-VM-READY' "$log" 2>/dev/null; then break; fi
    if ! kill -0 "$bgpid" 2>/dev/null; then
        wait "$bgpid" 2>/dev/null && rc=0 || rc=$?
        fail "qemu exited (status $rc) before the guest was ready"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "guest not ready after ${timeout}s"
    sleep 0.2
done

# qemu writes the pidfile itself early; make sure it is there and right.
for _ in $(seq 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
if [ ! -s "$pidfile" ]; then echo "$bgpid" > "$pidfile"; fi
pid=$(tr -d ' \n' < "$pidfile")
[ "$pid" = "$bgpid" ] || echo "run-vm: note: pidfile says $pid, started $bgpid" >&2
end=$(date +%s.%N)
printf 'run-vm: %s ready in %.1fs (pid %s, tap %s, mac %s, ip %s)\n' \
    "$name" "$(awk "BEGIN{print $end - $start}")" \
    "$pid" "$tap" "$mac" "$ip"
