#!/bin/sh
# Resident memory of a bridge binary of this machine's CPU with 0, 10 and 100 simulated meters
# polled every second, publishing to a loopback mosquitto: the figures of the README's table
# (ARM binaries are measured through the x86_64 binary of the same build kind).
#
#   sh cross/rss.sh BINARY [SECONDS]
#
# Prints one line: "BINARY: RSS 0/10/100 meters: A / B / C MiB" (VmRSS after SECONDS, default
# 20, of polling). The simulator runs in its own process; the broker on a free loopback port.
set -eu
bin=${1:?usage: cross/rss.sh BINARY [SECONDS]}
seconds=${2:-20}
[ -x "$bin" ] || { echo "rss.sh: no executable $bin" >&2; exit 2; }
command -v mosquitto >/dev/null || { echo "rss.sh: mosquitto is needed" >&2; exit 2; }
# shellcheck source=cross/loopback.sh
. "$(dirname "$0")/loopback.sh"
mqtt_port=${RSS_MQTT_PORT:-$((24000 + $$ % 1000))}
meter_port=${RSS_METER_PORT:-$((26000 + ($$ % 100) * 100))}
broker_config "$mqtt_port"
broker_start
"$bin" simulate --meters 100 --port-base "$meter_port" 2>/dev/null & remember $!
sleep 2
figures=""
for n in 0 10 100; do
    db="$dir/bridge-$n.db"
    "$bin" settings set mqtt.port "$mqtt_port" --db "$db"
    "$bin" settings set http.bind "" --db "$db"
    i=0
    while [ "$i" -lt "$n" ]; do
        "$bin" meter add "M$i" --host 127.0.0.1 --port $((meter_port + i)) --interval-s 1 --db "$db" >/dev/null
        i=$((i + 1))
    done
    "$bin" run --db "$db" --log-file "$dir/bridge-$n.log" & bridge=$!
    sleep "$seconds"
    kb=$(awk '/VmRSS/ {print $2}' "/proc/$bridge/status")
    kill -TERM "$bridge"
    wait "$bridge" || { echo "rss.sh: the bridge failed with $n meters" >&2; cat "$dir/bridge-$n.log" >&2; exit 1; }
    grep -q "published=[1-9]" "$dir/bridge-$n.log" || [ "$n" = 0 ] ||
        { echo "rss.sh: nothing published with $n meters" >&2; cat "$dir/bridge-$n.log" >&2; exit 1; }
    figures="$figures${figures:+ / }$(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}')"
done
echo "$bin: RSS 0/10/100 meters: $figures MiB"
