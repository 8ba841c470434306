# shellcheck shell=sh
# Sourced by cross/smoke.sh and cross/rss.sh: a temporary directory ($dir), processes started
# with `remember $!` stopped on any exit, and a loopback mosquitto on port $1 of
# broker_config (more configuration may be appended to "$dir/mosquitto.conf" before
# broker_start).
dir=$(mktemp -d)
pids=""
remember() { pids="$pids $1"; }
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
broker_config() { printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$1" > "$dir/mosquitto.conf"; }
broker_start() {
    mosquitto -c "$dir/mosquitto.conf" >/dev/null 2>&1 &
    remember $!
}
