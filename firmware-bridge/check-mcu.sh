#!/bin/sh
# Compiles every eport::epb source for a Cortex-M4 (bare metal, freestanding,
# -Os, warnings as errors) and prints each object's code size, the total with
# and without unit authentication (auth.c and sha256.c, linked only by a unit
# that authenticates) and each API function's own stack frame (-fstack-usage,
# callees not included).
# Usage: check-mcu.sh [arm-none-eabi-gcc] [output dir]   (ctest label "mcu")
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cc=${1:-arm-none-eabi-gcc}
out=${2:-}
if [ -z "$out" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
size=$(dirname "$(command -v "$cc")")/arm-none-eabi-size
[ -x "$size" ] || size=arm-none-eabi-size

objs=
for src in "$here"/src/*.c; do
  obj="$out/$(basename "$src" .c).o"
  "$cc" -std=c99 -Os -mcpu=cortex-m4 -mthumb -ffreestanding \
    -Wall -Wextra -Wpedantic -Wconversion -Werror -fstack-usage \
    -I"$here/include" -c "$src" -o "$obj"
  objs="$objs $obj"
done

# shellcheck disable=SC2086  # word splitting of the object list is intended
"$size" $objs
# shellcheck disable=SC2086
"$size" $objs | awk 'NR > 1 { text += $1; data += $2; bss += $3 }
  $6 ~ /\/(auth|sha256)\.o$/ { atext += $1; adata += $2 }
  END { printf "total: text %d, data %d, bss %d bytes (flash %d)\n", text, data, bss, text + data
        printf "without authentication (no auth.o, sha256.o): flash %d bytes\n", text + data - atext - adata }'
echo "own stack frame per API function (bytes, callees not included):"
cat "$out"/*.su | awk -F'\t' '$1 ~ /:epb_/ { sub(/.*:/, "", $1); printf "  %-22s %5d %s\n", $1, $2, $3 }'
