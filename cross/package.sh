#!/bin/sh
# Packages of dlms-bridge, built with standard tools only (dpkg-deb, tar, gzip):
#
#   sh cross/package.sh deb arm64|armhf|amd64 [BINARY]
#   sh cross/package.sh openwrt OPENWRT_ARCH [BINARY]
#
# deb: writes target/dist/dlms-bridge_<version>_<arch>.deb holding /usr/bin/dlms-bridge, the
# systemd unit, the SysV script, the defaults as a conffile (/etc/default/dlms-bridge) and the
# sysusers.d entry. The binary defaults to the release build of the matching gnu target
# (cross/build.sh; build it with `--glibc 2.17` to run on every Debian and Raspberry Pi OS
# since Buster); give BINARY to package another.
# Install: the service user and /var/lib/dlms-bridge (0700) are created, the service is enabled
# but not started (it has no meters yet: `dlms-bridge meter add ...`, then
# `systemctl start dlms-bridge`). Remove: stopped, data kept. Purge: the data and the user go.
#
# openwrt: writes target/dist/dlms-bridge_<version>_<OPENWRT_ARCH>.ipk for `opkg install`: the
# static musl binary (cross/build.sh --static), the procd service and the openwrt-router board
# defaults as a conffile; the database on the overlay (/etc/dlms-bridge), never in /tmp.
# OPENWRT_ARCH is the router's package architecture (`opkg print-architecture`), e.g.
# aarch64_cortex-a53, arm_cortex-a7_neon-vfpv4, x86_64: its CPU family picks the binary.
# Install: the service is enabled, not started; `opkg remove` stops it and keeps the database.
set -eu
cd "$(dirname "$0")/.."
usage="usage: cross/package.sh deb arm64|armhf|amd64 [BINARY] | openwrt OPENWRT_ARCH [BINARY]"
kind=${1:-}
arch=${2:-}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p target/dist
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

if [ "$kind" = openwrt ]; then
    case "$arch" in
        aarch64*) target=aarch64-unknown-linux-musl machine=AArch64 ;;
        arm_cortex-a7* | arm_cortex-a9* | arm_cortex-a15*) target=armv7-unknown-linux-musleabihf machine=ARM ;;
        x86_64) target=x86_64-unknown-linux-musl machine=X86-64 ;;
        *) echo "package.sh: OPENWRT_ARCH must be aarch64_*, arm_cortex-a7/a9/a15_* (ARMv7 with hard float) or x86_64" >&2; exit 2 ;;
    esac
    binary=${3:-target/$target/release/dlms-bridge}
    [ -x "$binary" ] || { echo "package.sh: no executable $binary (sh cross/build.sh --static $target)" >&2; exit 2; }
    command -v readelf >/dev/null || { echo "package.sh: readelf is needed (apt-get install binutils)" >&2; exit 2; }
    if ! readelf -h "$binary" | grep -Eq "Machine: .*$machine\$"; then
        echo "package.sh: $binary is not a binary for $arch ($(readelf -h "$binary" | sed -n 's/ *Machine: *//p'))" >&2
        exit 2
    fi
    if readelf -l "$binary" | grep -q INTERP; then
        echo "package.sh: $binary is dynamically linked; OpenWrt (musl) needs the static build" >&2
        exit 2
    fi
    data="$root/data"
    control="$root/control"
    mkdir -p "$data" "$control"
    install -D -m 0755 "$binary" "$data/usr/bin/dlms-bridge"
    install -D -m 0755 init.d/dlms-bridge.procd "$data/etc/init.d/dlms-bridge"
    install -D -m 0644 board-config/openwrt-router.env "$data/etc/default/dlms-bridge"
    mkdir -p "$data/etc/dlms-bridge"
    chmod 0700 "$data/etc/dlms-bridge"
    cat > "$control/control" <<CONTROL
Package: dlms-bridge
Version: $version
License: Apache-2.0
Section: net
Architecture: $arch
Installed-Size: $(du -sk "$data" | cut -f1)
Description: DLMS/COSEM electricity meters to ThingsBoard over MQTT (static binary, procd service)
CONTROL
    echo /etc/default/dlms-bridge > "$control/conffiles"
    # $IPKG_INSTROOT is set when an image is built: enable there too, start nothing.
    cat > "$control/postinst" <<'POSTINST'
#!/bin/sh
[ -n "$IPKG_INSTROOT" ] || /etc/init.d/dlms-bridge enable
echo "dlms-bridge: add meters (dlms-bridge meter add ... --db /etc/dlms-bridge/bridge.db), then /etc/init.d/dlms-bridge start"
exit 0
POSTINST
    cat > "$control/prerm" <<'PRERM'
#!/bin/sh
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/dlms-bridge stop 2>/dev/null
/etc/init.d/dlms-bridge disable 2>/dev/null
exit 0
PRERM
    chmod 0755 "$control/postinst" "$control/prerm"
    echo "2.0" > "$root/debian-binary"
    # opkg's format: a gzip'd tar of debian-binary, control.tar.gz and data.tar.gz, owned by root.
    (cd "$data" && tar --owner=0 --group=0 --numeric-owner -czf "$root/data.tar.gz" .)
    (cd "$control" && tar --owner=0 --group=0 --numeric-owner -czf "$root/control.tar.gz" .)
    out="target/dist/dlms-bridge_${version}_${arch}.ipk"
    (cd "$root" && tar --owner=0 --group=0 --numeric-owner -czf - ./debian-binary ./control.tar.gz ./data.tar.gz) > "$out"
    echo "$out"
    exit 0
fi

[ "$kind" = deb ] || { echo "$usage" >&2; exit 2; }
case "$arch" in
    arm64) target=aarch64-unknown-linux-gnu ;;
    armhf) target=armv7-unknown-linux-gnueabihf ;;
    amd64) target=x86_64-unknown-linux-gnu ;;
    *) echo "package.sh: the deb architecture must be arm64, armhf or amd64" >&2; exit 2 ;;
esac
binary=${3:-target/$target/release/dlms-bridge}
# A native build (cargo build --release) on an x86_64 machine is the amd64 binary too.
if [ -z "${3:-}" ] && [ ! -x "$binary" ] && [ "$arch" = amd64 ] && [ "$(uname -m)" = x86_64 ]; then
    binary=target/release/dlms-bridge
fi
[ -x "$binary" ] || { echo "package.sh: no executable $binary (cargo build --release, or sh cross/build.sh $target)" >&2; exit 2; }
command -v dpkg-deb >/dev/null || { echo "package.sh: dpkg-deb is needed (apt-get install dpkg)" >&2; exit 2; }
install -D -m 0755 "$binary" "$root/usr/bin/dlms-bridge"
# The board's defaults, each set once: systemd does not expand "$DATA_DIR/..." in an
# environment file (DB is literal), the page stays on loopback until the user opens it, and
# the unit sends the log to the journal (a LOG_FILE here would be ignored).
{
    grep -Ev '^(DB|HTTP_BIND|LOG_FILE)=' board-config/debian-alpine-arm.env
    echo 'DB=/var/lib/dlms-bridge/bridge.db'
    echo 'HTTP_BIND=127.0.0.1:8080'
    echo '# The log: systemd -> journalctl -u dlms-bridge; the SysV script -> LOG_FILE.'
    echo '#LOG_FILE=/var/log/dlms-bridge.log'
} | install -D -m 0644 /dev/stdin "$root/etc/default/dlms-bridge"
sed 's#/usr/local/bin/dlms-bridge#/usr/bin/dlms-bridge#' init.d/dlms-bridge.service \
    | install -D -m 0644 /dev/stdin "$root/lib/systemd/system/dlms-bridge.service"
# shellcheck disable=SC2016 # the script's own ${DAEMON:-...}, replaced as text
sed 's#^DAEMON=${DAEMON:-/usr/local/bin/dlms-bridge}#DAEMON=${DAEMON:-/usr/bin/dlms-bridge}#' init.d/dlms-bridge.sysv \
    | install -D -m 0755 /dev/stdin "$root/etc/init.d/dlms-bridge"
install -D -m 0644 init.d/dlms-bridge.sysusers "$root/usr/lib/sysusers.d/dlms-bridge.conf"
install -D -m 0644 README.md "$root/usr/share/doc/dlms-bridge/README.md"
mkdir -p "$root/DEBIAN"
size=$(du -sk "$root" | cut -f1)
# The shared libraries the binary links (a native build links the system OpenSSL).
depends=adduser
if command -v readelf >/dev/null; then
    needed=$(readelf -d "$binary" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
    case "$needed" in *libssl.so.3* | *libcrypto.so.3*) depends="$depends, libssl3" ;; esac
    case "$needed" in *libssl.so.1.1*) depends="$depends, libssl1.1" ;; esac
    case "$needed" in *libc.so.6*) depends="$depends, libc6" ;; esac
fi
cat > "$root/DEBIAN/control" <<CONTROL
Package: dlms-bridge
Version: $version
Architecture: $arch
Maintainer: dlms-bridge developers <dlms-bridge@localhost>
Installed-Size: $size
Depends: $depends
Section: net
Priority: optional
Description: DLMS/COSEM electricity meters to ThingsBoard over MQTT
 Reads meters over TCP or serial lines (HDLC, wrapper, DLMS security suite 0) and
 publishes their readings to ThingsBoard, with a durable outbox, a status page and
 management from ThingsBoard (RPC, shared attributes).
CONTROL
echo /etc/default/dlms-bridge > "$root/DEBIAN/conffiles"
install -m 0755 cross/deb/postinst cross/deb/prerm cross/deb/postrm "$root/DEBIAN/"
out="target/dist/dlms-bridge_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
