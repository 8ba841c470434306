#!/usr/bin/env bash
# A new user's first minutes, on a fresh clone (issue 25): the README's first command must bring
# up simulated meters, the bridge and its page; readings must reach the local broker; the page
# must show the meters polling; Ctrl-C must stop it cleanly. The command is taken from the
# README's "Two commands" section, so the script tests what the README says.
#   bash .ci/walkthrough.sh        (needs mosquitto, mosquitto_sub and curl; uses port 8080)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "walkthrough: $*" >&2
    echo "--- the demo's output:" >&2
    tail -40 "$work/demo.log" >&2 || true
    exit 1
}
# A fresh clone where the checkout is a git repository; else a copy of its files (not target/).
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    git clone -q "$repo" "$work/dlms-bridge"
else
    mkdir "$work/dlms-bridge"
    (cd "$repo" && tar --exclude=./target -cf - .) | (cd "$work/dlms-bridge" && tar -xf -)
fi
cd "$work/dlms-bridge"
cmd=$(sed -n '/^## Two commands/,/^## /p' README.md | grep '^cargo run' | sed 's/ *#.*//')
[ -n "$cmd" ] || fail "no 'cargo run' command in the README's Two commands section"
echo "walkthrough: $cmd"
# The build shares the checkout's target directory (only this crate is rebuilt for the clone).
CARGO_TARGET_DIR="$repo/target" setsid sh -c "exec $cmd" >"$work/demo.log" 2>&1 &
pid=$!
up=""
for _ in $(seq 1 900); do
    if curl -fs http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
        up=yes
        break
    fi
    kill -0 "$pid" 2>/dev/null || fail "the demo exited before its page answered"
    sleep 1
done
[ -n "$up" ] || fail "/healthz did not answer 200 within 15 minutes (build included)"
timeout 30 mosquitto_sub -h 127.0.0.1 -t v1/gateway/telemetry -C 1 >"$work/one.json" \
    || fail "no telemetry on the local broker within 30 s"
grep -q '"ts"' "$work/one.json" || fail "telemetry without readings: $(cat "$work/one.json")"
curl -fs http://127.0.0.1:8080/status >"$work/status.json" || fail "/status did not answer"
python3 - "$work/status.json" <<'PY' || fail "the page's status shows no meter polling"
import json, sys
meters = json.load(open(sys.argv[1]))["meters"]
polling = [n for n, m in meters.items() if m["state"] == "polling" and m["values"]]
print(f"walkthrough: {len(polling)} of {len(meters)} demo meters polling")
sys.exit(0 if polling else 1)
PY
grep -q "sign in with the token" "$work/demo.log" || fail "the demo printed no token for the page"
kill -INT -- "-$pid"
for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
done
if kill -0 "$pid" 2>/dev/null; then
    fail "Ctrl-C did not stop the demo within 10 s"
fi
wait "$pid" || fail "the demo exited with an error after Ctrl-C"
pid=""
# Its temporary directory (named in the banner: "database DIR/bridge.db") is gone.
demo_dir=$(sed -n 's/.*database \(.*\)\/bridge\.db$/\1/p' "$work/demo.log" | head -1)
[ -n "$demo_dir" ] || fail "the banner names no database"
[ ! -e "$demo_dir" ] || fail "the demo left $demo_dir behind"
echo "walkthrough: ok"
