#!/usr/bin/env bash
# Builds the .deb with CPack, installs it with dpkg -i, checks what an operator gets,
# and purges it again.
set -euo pipefail
build=$1
cd "$build"
rm -f vmscope_*.deb
cpack -G DEB >/dev/null
deb=$(ls vmscope_*.deb)
trap 'dpkg -P vmscope >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb" >/dev/null
test -x /usr/sbin/vmscope
/usr/sbin/vmscope run --help >/dev/null
test -f /etc/vmscope/vmscope.toml
dpkg-query -W -f='${Conffiles}\n' vmscope | grep -q /etc/vmscope/vmscope.toml
out=$(systemd-analyze verify /usr/lib/systemd/system/vmscope.service 2>&1) || { echo "$out" >&2; exit 1; }
if echo "$out" | grep -q "vmscope.service"; then echo "$out" >&2; exit 1; fi
for f in host.json vm-overview.json; do
  test -f /usr/share/vmscope/grafana-import/$f
  grep -q '${DS_INFLUXDB}' /usr/share/vmscope/grafana-import/$f
  ! grep -q 'DS_INFLUXDB}' /usr/share/vmscope/grafana-provisioned/$f
  grep -q '"uid": "vmscope-influxdb"' /usr/share/vmscope/grafana-provisioned/$f
done
grep -q 'path: /usr/share/vmscope/grafana-provisioned' /usr/share/vmscope/dashboards-vmscope.yaml
grep -q 'uid: vmscope-influxdb' /usr/share/vmscope/datasource-vmscope.yaml
echo "$deb: installs, unit verifies, config is a conffile, dashboards and provisioning in place"
