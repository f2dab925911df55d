#!/usr/bin/env bash
# deploy/influxdb-setup.sh against a real InfluxDB 1.x on loopback: creates the database
# and its default retention policy, and running it again changes nothing but the duration.
set -euo pipefail
src=$1
dir=$(mktemp -d)
port=18095
trap '"$src/tests/influx/stop-influxdb.sh" --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$src/tests/influx/start-influxdb.sh" --dir "$dir" --port $port >/dev/null
url=http://127.0.0.1:$port
"$src/deploy/influxdb-setup.sh" --url $url --duration 30d
"$src/deploy/influxdb-setup.sh" --url $url --duration 14d
rps=$(curl -sS -G $url/query --data-urlencode 'q=SHOW RETENTION POLICIES ON "vmscope"')
echo "$rps"
echo "$rps" | grep -q '\["vmscope_rp","336h0m0s","[^"]*",1,true\]' || { echo "vmscope_rp is not a 14d default policy" >&2; exit 1; }
[ "$(echo "$rps" | grep -o '"vmscope_rp"' | wc -l)" = 1 ] || { echo "duplicate policy" >&2; exit 1; }
curl -sS -XPOST "$url/write?db=vmscope" --data-binary 'interface,vm=web vm_to_host_bytes=1i' -o /dev/null -w '%{http_code}\n' | grep -q 204
echo "influxdb-setup.sh: database and retention policy OK"
