#!/usr/bin/env bash
# Creates the InfluxDB 1.x database vmscope writes to, with a retention policy.
#   deploy/influxdb-setup.sh [--url http://127.0.0.1:8086] [--db vmscope] [--duration 30d]
# Idempotent: an existing database or policy is altered, not duplicated.
set -euo pipefail
url=http://127.0.0.1:8086 db=vmscope duration=30d
while [ $# -gt 0 ]; do
  case $1 in
    --url) url=$2; shift 2 ;;
    --db) db=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    *) echo "influxdb-setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
q() {
  local out
  out=$(curl -sS --fail -XPOST "$url/query" --data-urlencode "q=$1") || { echo "influxdb-setup.sh: $url: $1 failed" >&2; exit 1; }
  case $out in *'"error"'*) echo "influxdb-setup.sh: $1: $out" >&2; exit 1 ;; esac
}
q "CREATE DATABASE \"$db\""
if curl -sS -G "$url/query" --data-urlencode "q=SHOW RETENTION POLICIES ON \"$db\"" | grep -q '"vmscope_rp"'; then
  q "ALTER RETENTION POLICY \"vmscope_rp\" ON \"$db\" DURATION $duration DEFAULT"
else
  q "CREATE RETENTION POLICY \"vmscope_rp\" ON \"$db\" DURATION $duration REPLICATION 1 DEFAULT"
fi
echo "database $db ready at $url (default retention policy vmscope_rp, $duration)"
