#!/bin/sh
# Docker-free ARM builds with Debian's cross compilers.
#
#   cross/build.sh [--install] [--tls] TARGET...   TARGET: aarch64-unknown-linux-gnu,
#                                                  armv7-unknown-linux-gnueabihf
#   cross/build.sh [--install] [--tls] --static TARGET...
#                                                  TARGET: aarch64-unknown-linux-musl,
#                                                  x86_64-unknown-linux-musl
#
# --static builds statically linked musl binaries with `cargo zigbuild` (zig as the C compiler
# and linker: no C cross toolchain; from PyPI `ziglang` and crates.io `cargo-zigbuild`, which
# --install fetches). They run on any Linux of their CPU whatever its C library: Raspberry Pi
# OS Bullseye/Buster, Alpine, OpenWrt.
# --install (root, Debian/Ubuntu) installs the cross gcc, qemu-user and cmake, and the rustup
# targets. Without --tls the binary has no MQTT TLS (mqtt.tls is refused with a clear error);
# --tls links a static, vendored OpenSSL (feature tls-vendored: no target OpenSSL needed,
# ~2.5 min more per target, +2.6 MB). Linkers and qemu runners come from .cargo/config.toml; this script adds the C
# compilers that paho-mqtt's bundled Paho C (cmake) and rusqlite's SQLite (cc) need.
# Output: target/TARGET/release/dlms-bridge (stripped, size-optimised release profile).
set -eu
cd "$(dirname "$0")/.."

install=0
static=0
features="--no-default-features --features runtime"
while [ $# -gt 0 ]; do
    case "$1" in
        --install) install=1; shift ;;
        --tls) features="--features tls-vendored"; shift ;;
        --static) static=1; shift ;;
        *) break ;;
    esac
done

if [ "$static" = 1 ]; then
    [ $# -gt 0 ] || set -- aarch64-unknown-linux-musl
    if [ "$install" = 1 ]; then
        python3 -m pip install --quiet --disable-pip-version-check ziglang
        command -v cargo-zigbuild >/dev/null || cargo install cargo-zigbuild --locked --quiet
        rustup target add "$@"
    fi
    command -v cargo-zigbuild >/dev/null ||
        { echo "cross/build.sh: --static needs cargo-zigbuild and ziglang (add --install)" >&2; exit 2; }
    for target in "$@"; do
        case "$target" in
            *-linux-musl | *-linux-musleabihf) ;;
            *) echo "cross/build.sh: --static takes musl targets, not $target" >&2; exit 2 ;;
        esac
        # shellcheck disable=SC2086 # $features is several words on purpose
        cargo zigbuild --release --locked $features --target "$target"
        ls -l "target/$target/release/dlms-bridge"
    done
    exit 0
fi
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
