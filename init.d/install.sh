#!/bin/sh
# Installs dlms-bridge on a gateway: the binary, the board's defaults, and the service for its
# init system. Run as root on the target (or with --destdir to stage a root file system).
#
#   init.d/install.sh --board raspberry-pi-os [--init systemd|sysv|openrc|procd] [--binary PATH]
#                     [--prefix /usr/local] [--destdir DIR] [--enable]
#
# Boards: the names of board-config/*.env. The init system defaults to procd for the
# openwrt-router board (or a root with etc/openwrt_release), systemd where systemd runs,
# openrc where openrc-run exists, else sysv. The binary is never run here (it may be built for
# another CPU): the service creates its user if needed and seeds the board's defaults into the
# database at its first start, as the service user.
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
    if [ "$board" = openwrt-router ] || [ -f "$destdir/etc/openwrt_release" ]; then init=procd
    elif [ -z "$destdir" ] && [ -d /run/systemd/system ]; then init=systemd
    elif [ -n "$destdir" ] && [ -d "$destdir/lib/systemd/system" ]; then init=systemd
    elif command -v openrc-run >/dev/null 2>&1; then init=openrc
    else init=sysv
    fi
fi
case "$init" in systemd | sysv | openrc | procd) ;; *) die "--init must be systemd, sysv, openrc or procd" ;; esac
if [ -z "$binary" ]; then
    binary="$top/target/release/dlms-bridge"
fi
[ -x "$binary" ] || die "no executable $binary (build it, or pass --binary)"

bindir="$destdir$prefix/bin"
[ "$init" = procd ] && bindir="$destdir/usr/bin"
mkdir -p "$bindir" "$destdir/etc/init.d"
install -m 0755 "$binary" "$bindir/dlms-bridge"

case "$init" in
    systemd)
        mkdir -p "$destdir/etc/default" "$destdir/etc/systemd/system" "$destdir/usr/lib/sysusers.d"
        install -m 0644 "$env_file" "$destdir/etc/default/dlms-bridge"
        # systemd does not expand "$DATA_DIR/..." in an environment file: the paths, spelled out.
        (
            # shellcheck source=/dev/null
            . "$env_file"
            echo "DB=$DB"
        ) >> "$destdir/etc/default/dlms-bridge"
        sed "s#/usr/local/bin/dlms-bridge#$prefix/bin/dlms-bridge#" "$here/dlms-bridge.service" \
            > "$destdir/etc/systemd/system/dlms-bridge.service"
        install -m 0644 "$here/dlms-bridge.sysusers" "$destdir/usr/lib/sysusers.d/dlms-bridge.conf" ;;
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

# The board's data directory, private to the service user. The database itself, with the
# board's HTTP and MQTT defaults, is made by the service at its first start.
# shellcheck source=/dev/null
. "$env_file"
mkdir -p "$destdir$DATA_DIR"
chmod 0700 "$destdir$DATA_DIR"
if [ -z "$destdir" ] && [ "${RUN_AS:-root}" != root ] && ! id "$RUN_AS" >/dev/null 2>&1; then
    if [ "$init" = systemd ] && command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers /usr/lib/sysusers.d/dlms-bridge.conf
    elif command -v useradd >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir "$DATA_DIR" --shell /usr/sbin/nologin "$RUN_AS"
        usermod -a -G dialout "$RUN_AS" || true
    elif command -v adduser >/dev/null 2>&1; then
        if adduser -S -D -H -h "$DATA_DIR" "$RUN_AS"; then addgroup "$RUN_AS" dialout || true; fi
    fi
fi
if [ -z "$destdir" ] && [ "${RUN_AS:-root}" != root ] && id "$RUN_AS" >/dev/null 2>&1; then
    chown -R "$RUN_AS" "$DATA_DIR"
fi

if [ "$enable" = 1 ] && [ -z "$destdir" ]; then
    case "$init" in
        systemd) systemctl daemon-reload && systemctl enable dlms-bridge ;;
        sysv) update-rc.d dlms-bridge defaults ;;
        openrc) rc-update add dlms-bridge default ;;
        procd) /etc/init.d/dlms-bridge enable ;;
    esac
fi
echo "installed dlms-bridge for $board with $init into ${destdir:-/}"
for dev in $SERIAL_DEVICES; do
    [ -e "$destdir$dev" ] && echo "serial port present: $dev (dlms-bridge read --serial $dev ...)"
done
if [ "$init" = systemd ]; then start="systemctl start dlms-bridge"; else start="/etc/init.d/dlms-bridge start"; fi
echo "next: $start (it creates $DB), then: dlms-bridge meter add ... --db $DB (as root or the service user)"
