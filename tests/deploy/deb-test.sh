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
# The unit runs the agent as the system user the postinst creates, which owns the spool.
getent passwd vmscope >/dev/null || { echo "postinst created no vmscope user" >&2; exit 1; }
[ "$(stat -c '%U:%G %a' /var/lib/vmscope)" = "vmscope:vmscope 700" ] ||
  { echo "/var/lib/vmscope: $(stat -c '%U:%G %a' /var/lib/vmscope), want vmscope:vmscope 700" >&2; exit 1; }
grep -qx "User=vmscope" /usr/lib/systemd/system/vmscope.service
out=$(systemd-analyze verify /usr/lib/systemd/system/vmscope.service 2>&1) || { echo "$out" >&2; exit 1; }
if echo "$out" | grep -q "vmscope.service"; then echo "$out" >&2; exit 1; fi
for f in host.json vm-overview.json; do
  test -f /usr/share/vmscope/grafana-import/$f
  grep -q '${DS_INFLUXDB}' /usr/share/vmscope/grafana-import/$f
  ! grep -q 'DS_INFLUXDB}' /usr/share/vmscope/grafana-provisioned/$f
  grep -q '"uid": "vmscope-influxdb"' /usr/share/vmscope/grafana-provisioned/$f
done
for f in host.json vm-overview.json; do
  grep -q '${DS_PROMETHEUS}' /usr/share/vmscope/grafana-import/prometheus/$f
  ! test -e /usr/share/vmscope/grafana-provisioned/prometheus
done
grep -q '^# listen = "127.0.0.1:9847"' /etc/vmscope/vmscope.toml
grep -q 'path: /usr/share/vmscope/grafana-provisioned' /usr/share/vmscope/dashboards-vmscope.yaml
grep -q 'uid: vmscope-influxdb' /usr/share/vmscope/datasource-vmscope.yaml

# The installed agent keeps its kernel state when it stops; removing the package removes
# it (in every namespace), and purging removes the spool.
ns=vs-deb-$$
ip netns add $ns
trap 'ip netns del $ns 2>/dev/null; dpkg -P vmscope >/dev/null 2>&1 || true' EXIT
ip -n $ns link add br0 type bridge
ip -n $ns link set br0 up
ip -n $ns tuntap add vmmtap0 mode tap
ip -n $ns link set vmmtap0 master br0 up
pins=/sys/fs/bpf/vmscope/net-$(stat -L -c %i /run/netns/$ns)
nsenter --net=/run/netns/$ns /usr/sbin/vmscope run --interval 0.2 --count 2 --output - \
  --attach clsact --spool-dir /var/lib/vmscope/spool >/dev/null 2>&1
test -e $pins/net_stats || { echo "no kernel state kept by the stopped agent" >&2; exit 1; }
ip netns exec $ns tc filter show dev vmmtap0 ingress | grep -q vs_tc_ingress
mkdir -p /var/lib/vmscope/spool
dpkg -r vmscope >/dev/null
! test -e $pins || { echo "pins left after dpkg -r: $(ls $pins)" >&2; exit 1; }
! ip netns exec $ns tc filter show dev vmmtap0 ingress | grep -q vs_tc_ || {
  echo "filters left after dpkg -r" >&2; exit 1; }
dpkg -P vmscope >/dev/null
! test -e /var/lib/vmscope || { echo "/var/lib/vmscope left after purge" >&2; exit 1; }
echo "$deb: installs, creates the vmscope user owning /var/lib/vmscope, unit verifies, config is a conffile, dashboards and provisioning in place; removal cleans the kernel state, purge the spool"
