#!/bin/sh
# Docker-free ARM builds with Debian's cross compilers.
#
#   cross/build.sh [--install] TARGET...     TARGET: aarch64-unknown-linux-gnu,
#                                            armv7-unknown-linux-gnueabihf
#
# --install (root, Debian/Ubuntu) installs the cross gcc, qemu-user and cmake, and the rustup
# targets. Linkers and qemu runners come from .cargo/config.toml; this script adds the C
# compilers that paho-mqtt's bundled Paho C (cmake) and rusqlite's SQLite (cc) need.
# Output: target/TARGET/release/dlms-bridge (stripped, size-optimised release profile).
set -eu
cd "$(dirname "$0")/.."

install=0
if [ "${1:-}" = --install ]; then install=1; shift; fi
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
    env "CC_$var=$gnu-gcc" "AR_$var=$gnu-ar" "CXX_$var=$gnu-g++" \
        cargo build --release --locked --target "$target"
    ls -l "target/$target/release/dlms-bridge"
done
