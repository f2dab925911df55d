#!/bin/bash
# Build a tiny busybox initramfs for the vmscope test VM.
#
#   tests/vm/build-initramfs.sh OUT.cpio.gz [DNS_RESPONDER]
#
# Uses only files of installed Debian packages (no network):
#   - busybox-static (/bin/busybox)
#   - the virtio net modules of the newest /boot/vmlinuz-<ver> that has a
#     /lib/modules/<ver> directory (linux-image-amd64).
#   - optionally DNS_RESPONDER (or $VMSCOPE_DNS_RESPONDER): the static
#     tests/helpers/dns_responder the tests build, packed stripped as
#     /bin/dns_responder.
# Writes OUT.cpio.gz and OUT.cpio.gz.kernel (the path of the paired kernel), and
# prints that kernel path as the last line on stdout.
#
# Boot speed: under TCG the guest spends ~4 s just decompressing the xz bzImage.
# When the kernel has a PVH entry (Debian: CONFIG_PVH=y), the script also
# extracts the uncompressed ELF to OUT.vmlinux (~65 MB, < 1 s) and pairs with
# that instead: qemu -kernel boots it through PVH, ~2.6 s to ready instead of
# ~6.5 s. VMSCOPE_VMLINUX=0 disables this (pairs with /boot/vmlinuz-<ver>).
#
# The guest /init configures eth0 from `vmscope.ip=A.B.C.D/N` on the kernel
# command line (optional `vmscope.gw=A.B.C.D`, and `vmscope.ip6=ADDR/N` for a
# static IPv6 address without DAD), serves /www (blob = 1048576 bytes,
# deterministic; /cgi-bin/connect?ADDR,PORT makes the guest connect out) with
# `busybox httpd -p 80`, answers DNS on UDP port 53 when the initramfs has
# /bin/dns_responder (vm.vmscope.test = the guest's own addresses), prints
# VMSCOPE-VM-READY on the console and then stays alive forever.
#
# Environment overrides: VMSCOPE_KERNEL_VERSION=<ver>, BUSYBOX=/path/to/busybox,
# VMSCOPE_BOOT_DIR (default /boot), VMSCOPE_MODULES_ROOT (default /lib/modules).
set -euo pipefail

die() { echo "build-initramfs: $*" >&2; exit 1; }

[ $# -eq 1 ] || [ $# -eq 2 ] || die "usage: $0 OUT.cpio.gz [DNS_RESPONDER]"
out=$1
dns=${2:-${VMSCOPE_DNS_RESPONDER:-}}
if [ -n "$dns" ]; then
    [ -x "$dns" ] || die "DNS responder $dns is not an executable"
    if command -v file >/dev/null 2>&1 && ! file -L "$dns" | grep -q 'statically linked'; then
        die "$dns is not statically linked (the guest has no shared libraries)"
    fi
fi
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
mkdir -p "$(dirname "$out")"

# ---- pick the kernel: newest /boot/vmlinuz-* with a modules dir -------------
bootdir=${VMSCOPE_BOOT_DIR:-/boot}
modroot=${VMSCOPE_MODULES_ROOT:-/lib/modules}
kver=${VMSCOPE_KERNEL_VERSION:-}
if [ -z "$kver" ]; then
    for v in $(ls "$bootdir"/vmlinuz-* 2>/dev/null | sed "s|^$bootdir/vmlinuz-||" | sort -V -r); do
        if [ -d "$modroot/$v/kernel" ]; then kver=$v; break; fi
    done
fi
[ -n "$kver" ] || die "no $bootdir/vmlinuz-<ver> with $modroot/<ver> (install linux-image-amd64)"
kernel=$bootdir/vmlinuz-$kver
moddir=$modroot/$kver
[ -r "$kernel" ] || die "$kernel not readable"
[ -d "$moddir" ] || die "$moddir missing"

busybox=${BUSYBOX:-}
if [ -z "$busybox" ]; then
    for b in /bin/busybox /usr/bin/busybox; do
        [ -x "$b" ] && { busybox=$b; break; }
    done
fi
[ -n "$busybox" ] || die "busybox not found (install busybox-static)"
if command -v file >/dev/null 2>&1 && ! file -L "$busybox" | grep -q 'statically linked'; then
    die "$busybox is not statically linked (install busybox-static)"
fi
command -v cpio >/dev/null || die "cpio not found"

# ---- staging dir --------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/vmscope-initramfs.XXXXXX")
trap 'rm -rf "$stage"; rm -f "$out".tmp.* "$out".vmlinux.tmp.*' EXIT
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,www,etc,lib/modules,root}
cp "$busybox" "$stage/bin/busybox"
chmod 0755 "$stage/bin/busybox"
# The applets /init uses, plus a few handy ones for a console shell.
for a in sh ash mount umount insmod ip ifconfig route httpd cat echo sleep mkdir \
         yes head wc ls ps kill dmesg setsid cttyhack mknod sed grep seq printf \
         uname ping nc wget free top date stat md5sum sha256sum dd true false; do
    ln -s busybox "$stage/bin/$a"
done

if [ -n "$dns" ]; then
    # Stripped: a third of the size, and the same bytes for the same build.
    strip --strip-all -o "$stage/bin/dns_responder" "$dns" 2>/dev/null \
        || cp "$dns" "$stage/bin/dns_responder"
    chmod 0755 "$stage/bin/dns_responder"
fi

# Device nodes for the very first console output (before devtmpfs is mounted).
if [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$stage/dev/console" c 5 1
    mknod -m 666 "$stage/dev/null" c 1 3
fi

# ---- modules (decompressed at build time) ----------------------------------------
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"
order=""
for m in $modules; do
    alt=${m//_/-}
    src=$(find "$moddir/kernel" \( -name "$m.ko" -o -name "$m.ko.*" -o -name "$alt.ko" -o -name "$alt.ko.*" \) 2>/dev/null | sort | head -n1)
    if [ -z "$src" ]; then
        if grep -qE "/($m|$alt)\.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
            echo "build-initramfs: $m is built into $kver, skipping" >&2
            continue
        fi
        die "module $m not found under $moddir/kernel and not builtin"
    fi
    dst="$stage/lib/modules/$m.ko"
    case "$src" in
        *.ko)     cp "$src" "$dst" ;;
        *.ko.xz)  xz -dc "$src" > "$dst" ;;
        *.ko.zst) zstd -q -dc "$src" > "$dst" ;;
        *.ko.gz)  gzip -dc "$src" > "$dst" ;;
        *)        die "unknown module compression: $src" ;;
    esac
    order="$order $m"
done
echo "$order" | tr ' ' '\n' | sed '/^$/d' > "$stage/etc/modules-order"

# ---- /init ------------------------------------------------------------------------
cat > "$stage/init" <<'EOF'
#!/bin/sh
# vmscope test VM init (PID 1). Must never exit.
export PATH=/bin:/sbin
umask 022
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || {
    [ -e /dev/console ] || mknod -m 600 /dev/console c 5 1
    [ -e /dev/null ] || mknod -m 666 /dev/null c 1 3
    [ -e /dev/ttyS0 ] || mknod -m 660 /dev/ttyS0 c 4 64
}
exec </dev/console >/dev/console 2>&1
say() { echo "vmscope-init: $*"; }
say "kernel $(uname -r)"

for m in $(cat /etc/modules-order); do
    insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done

ip=""; gw=""; ip6=""
for w in $(cat /proc/cmdline); do
    case "$w" in
        vmscope.ip=*) ip=${w#vmscope.ip=} ;;
        vmscope.gw=*) gw=${w#vmscope.gw=} ;;
        vmscope.ip6=*) ip6=${w#vmscope.ip6=} ;;
    esac
done

i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
    if [ -n "$ip" ]; then
        ip addr add "$ip" dev eth0 || say "ip addr add $ip failed"
    else
        say "no vmscope.ip= on the kernel command line"
    fi
    if [ -n "$ip6" ]; then
        # No DAD: the address is usable at once (tests talk to it right after READY).
        echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
        ip -6 addr add "$ip6" dev eth0 || say "ip -6 addr add $ip6 failed"
    fi
    ip link set eth0 up
    [ -n "$gw" ] && { ip route add default via "$gw" || say "default route via $gw failed"; }
    say "eth0 $(cat /sys/class/net/eth0/address) ip ${ip:-none} ip6 ${ip6:-none}"
else
    say "no eth0 (virtio_net missing?)"
fi

# 1 MiB of deterministic content: this line repeated, cut at 1048576 bytes.
mkdir -p /www
yes 'vmscope-test-blob 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ' \
    | head -c 1048576 > /www/blob
echo "<html><body>vmscope test vm ${ip%/*}</body></html>" > /www/index.html
say "blob $(wc -c < /www/blob) bytes"
# The guest as a TCP client, on request: GET /cgi-bin/connect?ADDR,PORT connects to
# ADDR:PORT (IPv4 or IPv6) with nc and answers "connect ok" or "connect failed".
mkdir -p /www/cgi-bin
cat > /www/cgi-bin/connect <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
case "$QUERY_STRING" in
    *,*) ;;
    *) echo "usage: connect?ADDR,PORT"; exit 0 ;;
esac
case "$QUERY_STRING" in *[!0-9a-fA-F.:,]*) echo "bad address"; exit 0 ;; esac
if nc -w 3 "${QUERY_STRING%,*}" "${QUERY_STRING##*,}" </dev/null >/dev/null 2>&1; then
    echo "connect ok"
else
    echo "connect failed"
fi
CGI
chmod 0755 /www/cgi-bin/connect
httpd -p 80 -h /www || say "httpd failed"
if [ -x /bin/dns_responder ]; then
    # Forks once UDP port 53 is bound: DNS is served when READY is printed.
    dns_responder vm.vmscope.test "${ip%/*}" ${ip6:+"${ip6%/*}"} || say "dns_responder failed"
fi

echo VMSCOPE-VM-READY

# Stay alive forever. ash (PID 1) reaps every child while it waits, including
# orphans re-parented to it. Keep a shell on the console for debugging.
trap '' INT TERM HUP QUIT TSTP
while :; do
    setsid cttyhack sh
    sleep 1
done
EOF
chmod 0755 "$stage/init"

# ---- archive (reproducible: fixed mtimes, sorted names, gzip -n) -----------------
find "$stage" -exec touch -h -d @0 {} +
tmp="$out.tmp.$$"
( cd "$stage" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio --quiet -o -H newc -R 0:0 --reproducible ) | gzip -n -9 > "$tmp"
mv -f "$tmp" "$out"

# ---- optional: uncompressed PVH vmlinux (much faster boot under TCG) ------------
extract_vmlinux() { # $1 = bzImage, $2 = output ELF; returns 0 if a PVH ELF was made
    local img=$1 dst=$2 magic dec off
    command -v readelf >/dev/null || return 1
    for pair in "xz:$(printf '\xfd7zXZ')" "zstd:$(printf '\x28\xb5\x2f\xfd')" "gzip:$(printf '\x1f\x8b\x08')"; do
        dec=${pair%%:*}; magic=${pair#*:}
        command -v "$dec" >/dev/null || continue
        for off in $(LC_ALL=C grep -aboF -- "$magic" "$img" 2>/dev/null | cut -d: -f1 | head -n 3); do
            case $dec in
                xz)   tail -c +$((off + 1)) "$img" | xz -dc --single-stream > "$dst" 2>/dev/null || true ;;
                zstd) tail -c +$((off + 1)) "$img" | zstd -q -dc > "$dst" 2>/dev/null || true ;;
                gzip) tail -c +$((off + 1)) "$img" | gzip -dc > "$dst" 2>/dev/null || true ;;
            esac
            # ELF with XEN_ELFNOTE_PHYS32_ENTRY (18 = 0x12): qemu can boot it via PVH.
            if [ "$(head -c 4 "$dst" 2>/dev/null)" = "$(printf '\x7fELF')" ] \
               && readelf -n "$dst" 2>/dev/null | grep -q 'Xen.*0x00000012'; then
                return 0
            fi
        done
    done
    rm -f "$dst"
    return 1
}
paired=$kernel
if [ "${VMSCOPE_VMLINUX:-1}" != 0 ]; then
    vtmp="$out.vmlinux.tmp.$$"
    if extract_vmlinux "$kernel" "$vtmp"; then
        mv -f "$vtmp" "$out.vmlinux"
        paired="$out.vmlinux"
        echo "build-initramfs: extracted PVH ELF $paired from $kernel" >&2
    else
        rm -f "$vtmp" "$out.vmlinux"
        echo "build-initramfs: no PVH ELF extracted from $kernel, pairing with the bzImage" >&2
    fi
fi
echo "$paired" > "$out.kernel"
echo "build-initramfs: $out ($(stat -c %s "$out") bytes), modules:$order" >&2
echo "$paired"
