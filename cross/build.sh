#!/bin/sh
# ARM (and static) builds without Docker.
#
#   cross/build.sh [--install] [--no-tls] TARGET...   Debian's cross gcc. TARGET:
#                                                  aarch64-unknown-linux-gnu,
#                                                  armv7-unknown-linux-gnueabihf
#   cross/build.sh [--install] [--no-tls] --static TARGET...
#                                                  statically linked musl binaries. TARGET:
#                                                  aarch64-unknown-linux-musl,
#                                                  armv7-unknown-linux-musleabihf,
#                                                  x86_64-unknown-linux-musl
#   cross/build.sh [--install] [--no-tls] --glibc VERSION TARGET...
#                                                  gnu binaries that need no glibc newer than
#                                                  VERSION (e.g. 2.17). TARGET: aarch64-,
#                                                  armv7- (gnueabihf) or x86_64-unknown-linux-gnu
#
# --static and --glibc build with `cargo zigbuild` (zig as the C compiler and linker: no C cross
# toolchain; from PyPI `ziglang` and crates.io `cargo-zigbuild`, which --install fetches). Static
# binaries run on any Linux of their CPU whatever its C library: Raspberry Pi OS
# Bullseye/Buster, Alpine, OpenWrt. rustup ships no standard library for
# armv7-unknown-linux-musleabihf here, so that target builds it from source with the nightly
# toolchain (`-Zbuild-std`, rust-src; --install adds both).
# --install (root, Debian/Ubuntu) installs the cross gcc, qemu-user and cmake, and the rustup
# targets. Every build has MQTT TLS (and HTTPS for the page) by default: it links a static,
# vendored OpenSSL (feature tls-vendored: no target OpenSSL needed, ~2.5 min more per target,
# +2.6 to 4.9 MB). --no-tls leaves it out (mqtt.tls is then refused with a clear error); --tls
# is accepted for older scripts and changes nothing. Linkers and qemu runners come from .cargo/config.toml;
# this script adds the C compilers that paho-mqtt's bundled Paho C (cmake) and rusqlite's
# SQLite (cc) need.
# OPENSSL_STATIC=1 makes paho-mqtt link the vendored OpenSSL as the static archives it is
# (without it, paho asks for libssl.so, which zig's linker refuses to replace by libssl.a).
# Output: target/TARGET/release/dlms-bridge (stripped, size-optimised release profile).
set -eu
cd "$(dirname "$0")/.."

install=0
static=0
glibc=""
features="--features tls-vendored"
while [ $# -gt 0 ]; do
    case "$1" in
        --install) install=1; shift ;;
        --tls) features="--features tls-vendored"; shift ;;
        --no-tls) features="--no-default-features --features runtime"; shift ;;
        --static) static=1; shift ;;
        --glibc)
            glibc=${2:-}
            case "$glibc" in 2.[0-9]*) ;; *) echo "cross/build.sh: --glibc takes a version such as 2.17" >&2; exit 2 ;; esac
            shift 2 ;;
        *) break ;;
    esac
done
case "$features" in *tls-vendored*) export OPENSSL_STATIC=1 ;; esac

# What the C parts need, checked before cargo starts: without this a missing tool shows as
# pages of CMake or linker output from a dependency's build script (cargo runs those first).
# $1: the C cross compiler this build uses ("" for zig builds).
prerequisites() {
    missing=""
    command -v cmake >/dev/null || missing="$missing cmake"
    if [ -n "$1" ]; then
        command -v "$1-gcc" >/dev/null || missing="$missing gcc-$1"
    else
        command -v python3 >/dev/null || missing="$missing python3"
        python3 -m pip --version >/dev/null 2>&1 || missing="$missing python3-pip"
    fi
    command -v cc >/dev/null || missing="$missing gcc"
    if [ -n "$missing" ]; then
        echo "cross/build.sh: building needs$missing: sudo apt-get install$missing (or add --install)" >&2
        exit 2
    fi
}

zig_tools() {
    [ "$install" = 1 ] || prerequisites ""
    if [ "$install" = 1 ]; then
        python3 -m pip install --quiet --disable-pip-version-check ziglang
        command -v cargo-zigbuild >/dev/null || cargo install cargo-zigbuild --locked --quiet
    fi
    command -v cargo-zigbuild >/dev/null ||
        { echo "cross/build.sh: $1 needs cargo-zigbuild and ziglang (add --install)" >&2; exit 2; }
}

if [ "$static" = 1 ] || [ -n "$glibc" ]; then
    if [ "$static" = 1 ]; then
        [ $# -gt 0 ] || set -- aarch64-unknown-linux-musl
        zig_tools --static
    else
        [ $# -gt 0 ] || set -- aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
        zig_tools --glibc
    fi
    for target in "$@"; do
        case "$static:$target" in
            1:*-linux-musl | 1:*-linux-musleabihf | 0:*-linux-gnu | 0:*-linux-gnueabihf) ;;
            1:*) echo "cross/build.sh: --static takes musl targets, not $target" >&2; exit 2 ;;
            *) echo "cross/build.sh: --glibc takes gnu targets, not $target" >&2; exit 2 ;;
        esac
        if [ "$target" = armv7-unknown-linux-musleabihf ]; then
            # No prebuilt standard library: build it from rust-src with nightly. zig links
            # musl itself, so rustc's self-contained CRT objects must stay out.
            [ "$install" = 1 ] && rustup component add rust-src --toolchain nightly >/dev/null
            # shellcheck disable=SC2086 # $features is several words on purpose
            RUSTFLAGS="-C link-self-contained=no" cargo +nightly zigbuild --release --locked $features \
                --target "$target" -Zbuild-std=std,panic_abort
        else
            [ "$install" = 1 ] && rustup target add "$target" >/dev/null
            # shellcheck disable=SC2086
            cargo zigbuild --release --locked $features --target "$target${glibc:+.$glibc}"
        fi
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
    [ "$install" = 1 ] || prerequisites "$gnu"
    var=$(echo "$target" | tr '-' '_')
    # shellcheck disable=SC2086 # $features is several words on purpose
    env "CC_$var=$gnu-gcc" "AR_$var=$gnu-ar" "CXX_$var=$gnu-g++" \
        cargo build --release --locked $features --target "$target"
    ls -l "target/$target/release/dlms-bridge"
done
