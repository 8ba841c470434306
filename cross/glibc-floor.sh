#!/bin/sh
# The oldest glibc a binary runs on: the newest GLIBC_x.y symbol version it needs (from the ELF
# version-needs section, so it works for any CPU's binary).
#
#   sh cross/glibc-floor.sh BINARY [FLOOR]
#
# prints "static" (no dynamic loader), "none" (dynamic but no glibc symbol) or the version, e.g.
# "2.17". With FLOOR, exits 1 naming the offending symbols when the binary needs a newer glibc.
set -eu
bin=${1:?usage: cross/glibc-floor.sh BINARY [FLOOR]}
floor=${2:-}
[ -f "$bin" ] || { echo "glibc-floor.sh: no file $bin" >&2; exit 2; }
command -v readelf >/dev/null || { echo "glibc-floor.sh: readelf is needed (apt-get install binutils)" >&2; exit 2; }
if ! readelf -l "$bin" | grep -q INTERP; then
    echo static
    exit 0
fi
versions=$(readelf -V --wide "$bin" | grep -Eo 'Name: GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/Name: GLIBC_//' | sort -uV)
if [ -z "$versions" ]; then
    echo none
    exit 0
fi
newest=$(echo "$versions" | tail -1)
echo "$newest"
if [ -n "$floor" ] && [ "$(printf '%s\n%s\n' "$floor" "$newest" | sort -V | tail -1)" != "$floor" ]; then
    too_new=$(printf '%s\n' "$versions" | while read -r v; do
        [ "$(printf '%s\n%s\n' "$floor" "$v" | sort -V | tail -1)" = "$floor" ] || printf ' GLIBC_%s' "$v"
    done)
    echo "glibc-floor.sh: $bin needs$too_new, newer than the floor $floor" >&2
    exit 1
fi
