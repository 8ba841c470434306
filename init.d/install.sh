#!/bin/sh
# Installs dlms-bridge on a gateway: the binary, the board's defaults, and the service for its
# init system. Run as root on the target (or with --destdir to stage a root file system).
#
#   init.d/install.sh --board raspberry-pi-os [--init sysv|openrc|procd] [--binary PATH]
#                     [--prefix /usr/local] [--destdir DIR] [--enable]
#
# Boards: the names of board-config/*.env. The init system defaults to procd on OpenWrt,
# openrc where openrc-run exists, else sysv.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
board=""
init=""
binary=""
prefix=/usr/local
destdir=""
enable=0

die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --board) board=${2:-}; shift 2 ;;
        --init) init=${2:-}; shift 2 ;;
        --binary) binary=${2:-}; shift 2 ;;
        --prefix) prefix=${2:-}; shift 2 ;;
        --destdir) destdir=${2:-}; shift 2 ;;
        --enable) enable=1; shift ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done

[ -n "$board" ] || die "--board is required: $(for f in "$top"/board-config/*.env; do basename "$f" .env; done | tr '\n' ' ')"
env_file="$top/board-config/$board.env"
[ -r "$env_file" ] || die "no board config $env_file"
if [ -z "$init" ]; then
    if [ -f "$destdir/etc/openwrt_release" ]; then init=procd
    elif command -v openrc-run >/dev/null 2>&1; then init=openrc
    else init=sysv
    fi
fi
case "$init" in sysv | openrc | procd) ;; *) die "--init must be sysv, openrc or procd" ;; esac
if [ -z "$binary" ]; then
    binary="$top/target/release/dlms-bridge"
fi
[ -x "$binary" ] || die "no executable $binary (build it, or pass --binary)"

bindir="$destdir$prefix/bin"
[ "$init" = procd ] && bindir="$destdir/usr/bin"
mkdir -p "$bindir" "$destdir/etc/init.d"
install -m 0755 "$binary" "$bindir/dlms-bridge"

case "$init" in
    sysv)
        mkdir -p "$destdir/etc/default"
        install -m 0644 "$env_file" "$destdir/etc/default/dlms-bridge"
        echo "DAEMON=$prefix/bin/dlms-bridge" >> "$destdir/etc/default/dlms-bridge"
        install -m 0755 "$here/dlms-bridge.sysv" "$destdir/etc/init.d/dlms-bridge" ;;
    openrc)
        mkdir -p "$destdir/etc/conf.d"
        cat "$here/dlms-bridge.confd" "$env_file" > "$destdir/etc/conf.d/dlms-bridge"
        echo "DAEMON=$prefix/bin/dlms-bridge" >> "$destdir/etc/conf.d/dlms-bridge"
        install -m 0755 "$here/dlms-bridge.openrc" "$destdir/etc/init.d/dlms-bridge" ;;
    procd)
        mkdir -p "$destdir/etc/default"
        install -m 0644 "$env_file" "$destdir/etc/default/dlms-bridge"
        echo "DAEMON=/usr/bin/dlms-bridge" >> "$destdir/etc/default/dlms-bridge"
        install -m 0755 "$here/dlms-bridge.procd" "$destdir/etc/init.d/dlms-bridge" ;;
esac

# The board's data directory and, on a first install, its HTTP and MQTT defaults.
# shellcheck source=/dev/null
. "$env_file"
mkdir -p "$destdir$DATA_DIR"
if [ ! -e "$destdir$DB" ]; then
    "$binary" settings set http.bind "$HTTP_BIND" --db "$destdir$DB" >/dev/null
    "$binary" settings set mqtt.host "$MQTT_HOST" --db "$destdir$DB" >/dev/null
fi
if [ "${RUN_AS:-root}" != root ] && [ -z "$destdir" ] && ! id "$RUN_AS" >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin --groups dialout "$RUN_AS" || true
    elif command -v adduser >/dev/null 2>&1; then
        if adduser -S -D -H "$RUN_AS"; then addgroup "$RUN_AS" dialout || true; fi
    fi
fi
if [ -z "$destdir" ] && [ "${RUN_AS:-root}" != root ]; then
    chown "$RUN_AS" "$DATA_DIR" "$DB" 2>/dev/null || true
fi

if [ "$enable" = 1 ] && [ -z "$destdir" ]; then
    case "$init" in
        sysv) update-rc.d dlms-bridge defaults ;;
        openrc) rc-update add dlms-bridge default ;;
        procd) /etc/init.d/dlms-bridge enable ;;
    esac
fi
echo "installed dlms-bridge for $board with $init into ${destdir:-/}"
for dev in $SERIAL_DEVICES; do
    [ -e "$destdir$dev" ] && echo "serial port present: $dev (dlms-bridge read --serial $dev ...)"
done
echo "next: dlms-bridge meter add ... --db $DB; then start the service (/etc/init.d/dlms-bridge start)"
