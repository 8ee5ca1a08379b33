#!/usr/bin/env bash
# plot_bars.sh OUT.png TITLE YLABEL DATA: clustered bars with gnuplot. DATA is a TSV with a
# header line: first column the group (x tick label), then one column per series (legend).
# Written to a temporary file and renamed.
set -euo pipefail
out=$1 title=$2 ylabel=$3 data=$4
ncol=$(grep -v '^#' "$data" | head -n 1 | awk -F'\t' '{ print NF }')
. "$(dirname "$0")/gnuplot.sh"
plot_png "$out" "$title" <<GP
set ylabel '$ylabel'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key outside right top
set xtics rotate by -20
plot for [c=2:$ncol] '$data' using c:xtic(1) title columnhead(c)
GP
