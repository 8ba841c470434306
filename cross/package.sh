#!/bin/sh
# Debian packages of dlms-bridge, with dpkg-deb only (no other tool):
#
#   sh cross/package.sh deb arm64|armhf|amd64 [BINARY]
#
# writes target/dist/dlms-bridge_<version>_<arch>.deb holding /usr/bin/dlms-bridge, the systemd
# unit, the SysV script, the defaults as a conffile (/etc/default/dlms-bridge) and the
# sysusers.d entry. The binary defaults to the release build of the matching target
# (cross/build.sh); give BINARY to package another.
#
# Install: the service user and /var/lib/dlms-bridge (0700) are created, the service is enabled
# but not started (it has no meters yet: `dlms-bridge meter add ...`, then
# `systemctl start dlms-bridge`). Remove: stopped, data kept. Purge: the data and the user go.
set -eu
cd "$(dirname "$0")/.."
[ "${1:-}" = deb ] || { echo "usage: cross/package.sh deb arm64|armhf|amd64 [BINARY]" >&2; exit 2; }
arch=${2:-}
case "$arch" in
    arm64) target=aarch64-unknown-linux-gnu ;;
    armhf) target=armv7-unknown-linux-gnueabihf ;;
    amd64) target=x86_64-unknown-linux-gnu ;;
    *) echo "package.sh: arch must be arm64, armhf or amd64" >&2; exit 2 ;;
esac
binary=${3:-target/$target/release/dlms-bridge}
[ -x "$binary" ] || { echo "package.sh: no executable $binary (build it first)" >&2; exit 2; }
command -v dpkg-deb >/dev/null || { echo "package.sh: dpkg-deb is needed (apt-get install dpkg)" >&2; exit 2; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
install -D -m 0755 "$binary" "$root/usr/bin/dlms-bridge"
install -D -m 0644 board-config/debian-alpine-arm.env "$root/etc/default/dlms-bridge"
echo 'HTTP_BIND=127.0.0.1:8080' >> "$root/etc/default/dlms-bridge"
# systemd does not expand "$DATA_DIR/..." in an environment file.
echo 'DB=/var/lib/dlms-bridge/bridge.db' >> "$root/etc/default/dlms-bridge"
sed 's#/usr/local/bin/dlms-bridge#/usr/bin/dlms-bridge#' init.d/dlms-bridge.service \
    | install -D -m 0644 /dev/stdin "$root/lib/systemd/system/dlms-bridge.service"
# shellcheck disable=SC2016 # the script's own ${DAEMON:-...}, replaced as text
sed 's#^DAEMON=${DAEMON:-/usr/local/bin/dlms-bridge}#DAEMON=${DAEMON:-/usr/bin/dlms-bridge}#' init.d/dlms-bridge.sysv \
    | install -D -m 0755 /dev/stdin "$root/etc/init.d/dlms-bridge"
install -D -m 0644 init.d/dlms-bridge.sysusers "$root/usr/lib/sysusers.d/dlms-bridge.conf"
install -D -m 0644 README.md "$root/usr/share/doc/dlms-bridge/README.md"
mkdir -p "$root/DEBIAN"
size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: dlms-bridge
Version: $version
Architecture: $arch
Maintainer: dlms-bridge developers <dlms-bridge@localhost>
Installed-Size: $size
Depends: adduser
Section: net
Priority: optional
Description: DLMS/COSEM electricity meters to ThingsBoard over MQTT
 Reads meters over TCP or serial lines (HDLC, wrapper, DLMS security suite 0) and
 publishes their readings to ThingsBoard, with a durable outbox, a status page and
 management from ThingsBoard (RPC, shared attributes).
CONTROL
echo /etc/default/dlms-bridge > "$root/DEBIAN/conffiles"
install -m 0755 cross/deb/postinst cross/deb/prerm cross/deb/postrm "$root/DEBIAN/"
mkdir -p target/dist
out="target/dist/dlms-bridge_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
