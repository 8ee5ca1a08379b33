#!/usr/bin/env bash
# plot_xy.sh OUT.png TITLE XLABEL YLABEL DATA: one line of points from a two-column TSV with a header.
set -euo pipefail
out=$1 title=$2 xlabel=$3 ylabel=$4 data=$5
. "$(dirname "$0")/gnuplot.sh"
plot_png "$out" "$title" <<GP
set xlabel '$xlabel'
set ylabel '$ylabel'
set grid
set key bottom right
plot '$data' using 1:2 with linespoints pointtype 7 title columnhead(2)
GP
