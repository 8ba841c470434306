#!/bin/sh
# Docker-free ARM builds with Debian's cross compilers.
#
#   cross/build.sh [--install] [--tls] TARGET...   TARGET: aarch64-unknown-linux-gnu,
#                                                  armv7-unknown-linux-gnueabihf
#
# --install (root, Debian/Ubuntu) installs the cross gcc, qemu-user and cmake, and the rustup
# targets. Without --tls the binary has no MQTT TLS (mqtt.tls is refused with a clear error);
# --tls links a static, vendored OpenSSL (feature tls-vendored: no target OpenSSL needed,
# ~2.5 min more per target, +2.6 MB). Linkers and qemu runners come from .cargo/config.toml; this script adds the C
# compilers that paho-mqtt's bundled Paho C (cmake) and rusqlite's SQLite (cc) need.
# Output: target/TARGET/release/dlms-bridge (stripped, size-optimised release profile).
set -eu
cd "$(dirname "$0")/.."

install=0
features="--no-default-features --features runtime"
while [ $# -gt 0 ]; do
    case "$1" in
        --install) install=1; shift ;;
        --tls) features="--features tls-vendored"; shift ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || set -- aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf

if [ "$install" = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user cmake >/dev/null
    rustup target add "$@"
fi

for target in "$@"; do
    case "$target" in
        aarch64-unknown-linux-gnu) gnu=aarch64-linux-gnu ;;
        armv7-unknown-linux-gnueabihf | arm-unknown-linux-gnueabihf) gnu=arm-linux-gnueabihf ;;
        *) echo "cross/build.sh: unsupported target $target" >&2; exit 2 ;;
    esac
    var=$(echo "$target" | tr '-' '_')
    # shellcheck disable=SC2086 # $features is several words on purpose
    env "CC_$var=$gnu-gcc" "AR_$var=$gnu-ar" "CXX_$var=$gnu-g++" \
        cargo build --release --locked $features --target "$target"
    ls -l "target/$target/release/dlms-bridge"
done
