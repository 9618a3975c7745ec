#!/bin/sh
# Compiles every eport::epb source for a Cortex-M4 (bare metal, freestanding,
# -Os, warnings as errors) and prints each object's code size, the flash a
# unit links with and without unit authentication (auth.c and sha256.c) and
# evidence (evidence.c and sha256.c; evidence_verify.c is for verifiers and
# no unit needs it), each linked only by a unit that calls it, and each API
# function's own stack frame (-fstack-usage, callees not included).
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
  { f = $1 + $2 } $6 ~ /\/auth\.o$/ { auth = f } $6 ~ /\/sha256\.o$/ { sha = f }
  $6 ~ /\/evidence\.o$/ { ev = f } $6 ~ /\/evidence_verify\.o$/ { evv = f }
  END { printf "total: text %d, data %d, bss %d bytes (flash %d)\n", text, data, bss, text + data
        base = text + data - auth - sha - ev - evv
        printf "unit without authentication or evidence: flash %d bytes\n", base
        printf "unit with authentication (auth.o, sha256.o): flash %d bytes\n", base + auth + sha
        printf "unit with evidence (evidence.o, sha256.o): flash %d bytes (+%d)\n", base + ev + sha, ev + sha
        printf "unit with both: flash %d bytes (evidence adds %d)\n", base + auth + sha + ev, ev
        printf "evidence verifier (evidence_verify.o, needs evidence.o, sha256.o, the codec): %d bytes\n", evv }'
echo "own stack frame per API function (bytes, callees not included):"
cat "$out"/*.su | awk -F'\t' '$1 ~ /:epb_/ { sub(/.*:/, "", $1); printf "  %-22s %5d %s\n", $1, $2, $3 }'
