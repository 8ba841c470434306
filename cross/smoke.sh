#!/bin/sh
# End-to-end smoke test of a cross-built bridge under qemu-user: the ARM binary runs the
# simulator and the bridge, publishing to a loopback mosquitto; a subscriber must receive
# telemetry, and SIGTERM must stop the bridge cleanly. Prints CPU per meter-cycle and the
# emulated process's RSS.
#
#   cross/smoke.sh TARGET [METERS] [SECONDS]
#   SMOKE_MQTT_PORT and SMOKE_METER_PORT (the first of METERS ports) choose the loopback ports;
#   by default they derive from the process id. Everything started is stopped on any exit.
#   SMOKE_TLS=1: the broker listens with TLS only (a throw-away self-signed certificate for
#   127.0.0.1) and the bridge must verify it: for binaries built with TLS (the default).
set -eu
cd "$(dirname "$0")/.."
target=$1
meters=${2:-10}
seconds=${3:-20}
case "$target" in
    aarch64-unknown-linux-gnu) qemu="qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf | arm-unknown-linux-gnueabihf) qemu="qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    # Static binaries: no -L, no target C library anywhere.
    aarch64-unknown-linux-musl) qemu="qemu-aarch64" ;;
    armv7-unknown-linux-musleabihf) qemu="qemu-arm" ;;
    x86_64-unknown-linux-musl) qemu="" ;;
    *) echo "unsupported target $target" >&2; exit 2 ;;
esac
bin="target/$target/release/dlms-bridge"
[ -x "$bin" ] || { echo "build $bin first (cross/build.sh $target)" >&2; exit 2; }
# shellcheck source=cross/loopback.sh
. "$(dirname "$0")/loopback.sh"
mqtt_port=${SMOKE_MQTT_PORT:-$((20000 + $$ % 1000))}
meter_port=${SMOKE_METER_PORT:-$((22000 + ($$ % 100) * 10))}

broker_config "$mqtt_port"
sub_tls=""
if [ "${SMOKE_TLS:-0}" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=dlms-bridge-smoke -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$dir/broker.key" -out "$dir/broker.crt" 2>/dev/null
    # mosquitto started as root drops to its own user, which must read its (throw-away) key.
    chmod 0755 "$dir"
    chmod 0644 "$dir/broker.key"
    printf 'certfile %s\nkeyfile %s\n' "$dir/broker.crt" "$dir/broker.key" >> "$dir/mosquitto.conf"
    sub_tls="--cafile $dir/broker.crt"
fi
broker_start
# shellcheck disable=SC2086
$qemu "$bin" simulate --meters "$meters" --port-base "$meter_port" 2>/dev/null & remember $!
sleep 2
# shellcheck disable=SC2086
$qemu "$bin" settings set mqtt.port "$mqtt_port" --db "$dir/bridge.db"
# shellcheck disable=SC2086
$qemu "$bin" settings set http.bind "" --db "$dir/bridge.db"
if [ -n "$sub_tls" ]; then
    # shellcheck disable=SC2086
    $qemu "$bin" settings set mqtt.tls true --db "$dir/bridge.db"
    # shellcheck disable=SC2086
    $qemu "$bin" settings set mqtt.ca_file "$dir/broker.crt" --db "$dir/bridge.db"
fi
i=0
while [ "$i" -lt "$meters" ]; do
    # shellcheck disable=SC2086
    $qemu "$bin" meter add "M$i" --host 127.0.0.1 --port $((meter_port + i)) --server-physical 17 \
        --interval-s 1 --db "$dir/bridge.db" >/dev/null
    i=$((i + 1))
done
# shellcheck disable=SC2086 # $sub_tls is two words or none
mosquitto_sub $sub_tls -h 127.0.0.1 -p "$mqtt_port" -t v1/gateway/telemetry -C 5 -W 60 > "$dir/received" & sub=$!
remember "$sub"
# shellcheck disable=SC2086
$qemu "$bin" run --db "$dir/bridge.db" --log-file "$dir/bridge.log" & bridge=$!
remember "$bridge"
sleep 5
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0=$(ticks "$bridge")
sleep "$seconds"
t1=$(ticks "$bridge")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$bridge/status")
wait "$sub" || { echo "FAIL: no telemetry received"; cat "$dir/bridge.log"; exit 1; }
kill -TERM "$bridge"
wait "$bridge" || { echo "FAIL: bridge exit status $?"; cat "$dir/bridge.log"; exit 1; }
grep -q "stopping: releasing $meters meter(s)" "$dir/bridge.log" || { echo "FAIL: no clean stop"; cat "$dir/bridge.log"; exit 1; }
echo "$target${sub_tls:+ (MQTT over TLS)}: $(wc -l < "$dir/received") telemetry messages received; under qemu: $(( (t1 - t0) * 10000 / (seconds * meters) )) µs CPU per meter-cycle, RSS $((rss / 1024)) MiB (emulator included)"
