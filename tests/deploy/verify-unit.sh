#!/usr/bin/env bash
# systemd-analyze verify on deploy/vmscope.service, with ExecStart pointed at the binary
# just built (verify checks that it exists) and the config at the shipped file.
set -euo pipefail
src=$1 bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|^ExecStart=/usr/sbin/vmscope run --config /etc/vmscope/vmscope.toml|ExecStart=$bin run --config $src/deploy/vmscope.toml|" \
  "$src/deploy/vmscope.service" > "$tmp/vmscope.service"
grep -q "^ExecStart=$bin " "$tmp/vmscope.service" || { echo "ExecStart not rewritten" >&2; exit 1; }
out=$(systemd-analyze verify "$tmp/vmscope.service" 2>&1) || { echo "$out" >&2; exit 1; }
# verify exits 0 on some warnings: fail on any line that names our unit.
if echo "$out" | grep -q "vmscope.service"; then echo "$out" >&2; exit 1; fi
# The spool's default directory must be one the sandbox (ProtectSystem=strict) leaves
# writable: the unit's StateDirectory.
grep -qx "StateDirectory=vmscope" "$src/deploy/vmscope.service" ||
  { echo "vmscope.service: no StateDirectory=vmscope for the spool" >&2; exit 1; }
"$bin" run --help | grep -q "default /var/lib/vmscope/spool" ||
  { echo "vmscope run --help: spool default is not under /var/lib/vmscope" >&2; exit 1; }
echo "systemd-analyze verify: vmscope.service OK"
