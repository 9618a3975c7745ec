#!/usr/bin/env bash
# The figures of docs/benchmarks.md that a curve shows better than a table
# (issue 16): runs eport-wire-bench --rates and eport-flash-bench, keeps their
# CSVs and tables, and draws two SVG plots with gnuplot:
#   wire-bytes-per-reading.svg  total MQTT bytes per reading against the
#                               gateway's readings/s at the publisher's
#                               defaults: v1+zstd, v2+dictionary (the
#                               default), JSON and Sparkplug B, with the
#                               issue 16 goals marked;
#   flash-bytes-written.svg     bytes written to the device per stored
#                               reading against the commit window, one curve
#                               per rate, the floor of each dashed.
# It lives in scripts/ with the other run-by-hand tools (footprint.sh), not in
# tests/bench/: it is not a test, ctest never runs it, and only it needs
# gnuplot (CI does not). The benchmarks must be built first:
#   ninja -C build eport-wire-bench eport-flash-bench
# Usage: scripts/bench-plots.sh [--build DIR] [--flash-seconds S] [OUT_DIR]
#        (defaults: build, 2 s per flash case, OUT_DIR = build/bench-plots)
# The figures in docs/img are copies of the two SVGs (docs/benchmarks.md says
# which command made them).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build FLASH_SECONDS=2 OUT=
RATES=1,2,5,10,20,50,100,200,500,1000
usage() { echo "usage: $0 [--build DIR] [--flash-seconds S] [OUT_DIR]" >&2; exit 64; }
while (($#)); do
  case "$1" in
    --build) (($# >= 2)) || usage; BUILD=$2; shift 2 ;;
    --flash-seconds) (($# >= 2)) || usage; FLASH_SECONDS=$2; shift 2 ;;
    -*) usage ;;
    *) [[ -z $OUT ]] || usage; OUT=$1; shift ;;
  esac
done
OUT=${OUT:-$BUILD/bench-plots}

if ! command -v gnuplot >/dev/null; then
  echo "bench-plots: gnuplot not found; install it (Debian: apt-get install gnuplot-nox)" >&2
  exit 1
fi
WIRE=$BUILD/tests/bench/eport-wire-bench
FLASH=$BUILD/tests/bench/eport-flash-bench
for b in "$WIRE" "$FLASH"; do
  [[ -x $b ]] || { echo "bench-plots: $b not built (ninja -C $BUILD eport-wire-bench eport-flash-bench)" >&2; exit 1; }
done
mkdir -p "$OUT"

echo "bench-plots: $WIRE --rates $RATES" >&2
"$WIRE" --rates "$RATES" --csv "$OUT/wire-rates.csv" >"$OUT/wire-rates.txt"
echo "bench-plots: $FLASH --seconds $FLASH_SECONDS (15 cases)" >&2
"$FLASH" --seconds "$FLASH_SECONDS" --csv "$OUT/flash-wear.csv" >"$OUT/flash-wear.txt"

# The goals of issue 16 are per readings per envelope; at the publisher's
# publish.max_age_ms (the wire CSV's first line says which) an envelope
# holds rate x max_age readings, which places them on the rate axis.
MAX_AGE_MS=$(sed -n '1s/.*max_age_ms=\([0-9]*\).*/\1/p' "$OUT/wire-rates.csv")
[[ -n $MAX_AGE_MS && $MAX_AGE_MS -gt 0 ]] || { echo "bench-plots: no max_age_ms in $OUT/wire-rates.csv" >&2; exit 1; }
# Which envelope the agent sends by default, for the legend.
V1_NOTE= V2_NOTE=
case "$(sed -n '1s/.*envelope_format=\(v[0-9]\).*compression=zstd.*/\1/p' "$OUT/wire-rates.csv")" in
  v1) V1_NOTE=" (default)" ;;
  v2) V2_NOTE=" (default)" ;;
esac

# The flash CSV as one gnuplot data block per rate (rows of a rate are
# contiguous: the bench loops over rates, then windows).
awk -F, 'NR > 1 { if (NR > 2 && $2 != last) printf "\n\n"; print $1, $2, $5, $6; last = $2 }' \
  "$OUT/flash-wear.csv" >"$OUT/flash-wear.dat"
FLASH_RATES=$(awk -F, 'NR > 1 && !seen[$2]++ { printf "%s ", $2 }' "$OUT/flash-wear.csv")

gnuplot <<EOF
set encoding utf8
set terminal svg size 760,470 font "sans,12" noenhanced background rgb "white"
set datafile separator ","
set key top right box opaque
set grid xtics ytics mytics lc rgb "#dddddd"
set border 3
set tics nomirror

set output "$OUT/wire-bytes-per-reading.svg"
set title "MQTT bytes per reading (PUBLISH + PUBACK), publisher defaults (max_age_ms $MAX_AGE_MS)"
set key bottom left
set xlabel "readings/s at the gateway (readings per envelope = rate × max_age, at most max_readings)"
set ylabel "bytes per reading"
set logscale xy
set xrange [0.8:1300]
set yrange [8:400]
age = $MAX_AGE_MS / 1000.0
set label 1 "goal ≤ 100" at 1.0/age, 100 offset 1,0.8
set label 2 "goal ≤ 25" at 10, 25 offset 1,-0.9
set label 3 "goal ≤ 12" at 500.0/age, 12 offset -4,-1.1
plot "$OUT/wire-rates.csv" using 1:8 with linespoints lw 2 pt 7 ps 0.6 lc rgb "#999999" title "JSON, 1 message per reading", \
     "" using 1:10 with linespoints lw 2 pt 5 ps 0.6 lc rgb "#e69f00" title "Sparkplug B DDATA, aliases", \
     "" using 1:5 with linespoints lw 2 pt 9 ps 0.7 lc rgb "#56b4e9" title "envelope v1 + zstd$V1_NOTE", \
     "" using 1:7 with linespoints lw 3 pt 7 ps 0.7 lc rgb "#0072b2" title "envelope v2 + zstd + dictionary$V2_NOTE", \
     "" using 1:12 with linespoints lw 2 dt 2 pt 6 ps 0.7 lc rgb "#009e73" title "the same over MQTT 5 with a topic alias", \
     "+" using (1.0/age):(100) every ::0::0 with points pt 6 ps 2 lw 2 lc rgb "#d55e00" title "issue 16 goals", \
     "+" using (10):(25) every ::0::0 with points pt 6 ps 2 lw 2 lc rgb "#d55e00" notitle, \
     "+" using (500.0/age):(12) every ::0::0 with points pt 6 ps 2 lw 2 lc rgb "#d55e00" notitle

unset label
set key top right
set output "$OUT/flash-bytes-written.svg"
set datafile separator whitespace
set title "Bytes written to the device per stored reading, durability full ($FLASH_SECONDS s per case)"
set xlabel "commit window, ms (store.commit_interval_ms)"
set ylabel "bytes written per reading"
unset logscale
set logscale y
set xrange [-5:260]
set xtics (0, 10, 50, 100, 250)
set yrange [*:*]
rates = "$FLASH_RATES"
colors = "#0072b2 #e69f00 #009e73 #cc79a7 #56b4e9"
plot for [i=1:words(rates)] "$OUT/flash-wear.dat" index i-1 using 1:3 with linespoints lw 2 pt 7 ps 0.6 \
       lc rgb word(colors, i) title sprintf("%s readings/s, written", word(rates, i)), \
     for [i=1:words(rates)] "" index i-1 using 1:4 with linespoints lw 1.5 dt 2 pt 6 ps 0.6 \
       lc rgb word(colors, i) title sprintf("%s readings/s, floor", word(rates, i))
EOF
echo "bench-plots: $OUT/wire-bytes-per-reading.svg $OUT/flash-bytes-written.svg" >&2
