#!/bin/sh
# Resident memory of two bridge binaries, one after the other, each with 100 simulated meters
# polled every second (the same simulator and broker): BEFORE without page traffic, AFTER
# without it too, then AFTER with the web page "open", i.e. fetched as a signed-in page does
# every 2 s (/status, a meter's chart data, active alarms, new log lines). The issue's bound:
# AFTER with the page open within 2 MiB of BEFORE.
#
#   sh cross/page_rss.sh BEFORE_BINARY AFTER_BINARY [SECONDS]
#
# Prints "before: X MiB, after: Y MiB, after with the page open: Z MiB, difference: D MiB"
# (VmRSS after SECONDS, default 60, of polling).
set -eu
before=${1:?usage: cross/page_rss.sh BEFORE_BINARY AFTER_BINARY [SECONDS]}
after=${2:?usage: cross/page_rss.sh BEFORE_BINARY AFTER_BINARY [SECONDS]}
seconds=${3:-60}
for b in "$before" "$after"; do
    [ -x "$b" ] || { echo "page_rss.sh: no executable $b" >&2; exit 2; }
done
for tool in mosquitto curl; do
    command -v "$tool" >/dev/null || { echo "page_rss.sh: $tool is needed" >&2; exit 2; }
done
# shellcheck source=cross/loopback.sh
. "$(dirname "$0")/loopback.sh"
mqtt_port=${RSS_MQTT_PORT:-$((24000 + $$ % 1000))}
meter_port=${RSS_METER_PORT:-$((26000 + ($$ % 100) * 100))}
http_port=$((mqtt_port + 1000))
token="page-rss-token-0123456789"
broker_config "$mqtt_port"
broker_start
"$after" simulate --meters 100 --port-base "$meter_port" 2>/dev/null & remember $!
sleep 2

# measure BINARY LABEL PAGE(0|1): prints the VmRSS in KiB.
measure() {
    bin=$1 label=$2 page=$3
    db="$dir/$label.db"
    "$bin" settings set mqtt.port "$mqtt_port" --db "$db" >/dev/null
    "$bin" settings set http.bind "127.0.0.1:$http_port" --db "$db" >/dev/null
    "$bin" settings set http.api_token "$token" --db "$db" >/dev/null
    i=0
    while [ "$i" -lt 100 ]; do
        "$bin" meter add "M$i" --host 127.0.0.1 --port $((meter_port + i)) --interval-s 1 --db "$db" >/dev/null
        i=$((i + 1))
    done
    "$bin" run --db "$db" --log-file "$dir/$label.log" & bridge=$!
    end=$(( $(date +%s) + seconds ))
    since=0
    while [ "$(date +%s)" -lt "$end" ]; do
        if [ "$page" = 1 ]; then
            curl -s "http://127.0.0.1:$http_port/status" >/dev/null || true
            curl -s "http://127.0.0.1:$http_port/status/meters/M7/history" >/dev/null || true
            curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$http_port/api/alarms?active=true" >/dev/null || true
            since=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$http_port/api/logs?since=$since" |
                sed -n 's/.*"newest":\([0-9]*\).*/\1/p')
            since=${since:-0}
        fi
        sleep 2
    done
    kb=$(awk '/VmRSS/ {print $2}' "/proc/$bridge/status")
    kill -TERM "$bridge"
    wait "$bridge" || { echo "page_rss.sh: $label failed" >&2; cat "$dir/$label.log" >&2; exit 1; }
    grep -q "published=[1-9]" "$dir/$label.log" ||
        { echo "page_rss.sh: $label published nothing" >&2; cat "$dir/$label.log" >&2; exit 1; }
    echo "$kb"
}
b=$(measure "$before" before 0)
i=$(measure "$after" idle 0)
a=$(measure "$after" after 1)
awk -v b="$b" -v i="$i" -v a="$a" 'BEGIN { printf "before: %.1f MiB, after: %.1f MiB, after with the page open: %.1f MiB, difference: %.1f MiB\n", b / 1024, i / 1024, a / 1024, (a - b) / 1024 }'
