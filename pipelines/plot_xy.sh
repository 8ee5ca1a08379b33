#!/usr/bin/env bash
# plot_xy.sh OUT.png TITLE XLABEL YLABEL DATA: one line of points from a two-column TSV with a header.
set -euo pipefail
out=$1 title=$2 xlabel=$3 ylabel=$4 data=$5
command -v gnuplot >/dev/null || { echo "plot_xy.sh: gnuplot not installed" >&2; exit 1; }
tmp=$(mktemp "$out.tmp.XXXXXX")
gnuplot <<GP
set terminal pngcairo size 900,540 noenhanced
set output '$tmp'
set datafile separator '\t'
set title '$title'
set xlabel '$xlabel'
set ylabel '$ylabel'
set grid
set key bottom right
plot '$data' using 1:2 with linespoints pointtype 7 title columnhead(2)
GP
mv "$tmp" "$out"
