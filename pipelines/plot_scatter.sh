#!/usr/bin/env bash
# plot_scatter.sh OUT.png TITLE XLABEL YLABEL DATA: labelled points from a TSV with a header
# "label x y"; one colour per label.
set -euo pipefail
out=$1 title=$2 xlabel=$3 ylabel=$4 data=$5
. "$(dirname "$0")/gnuplot.sh"
plot_png "$out" "$title" <<GP
set xlabel '$xlabel'
set ylabel '$ylabel'
set grid
unset key
set offsets graph 0.05, graph 0.15, graph 0.1, graph 0.1
plot '$data' using 2:3:(\$0 + 1) with points pointsize 2 pointtype 7 linecolor variable notitle, \
     '$data' using 2:3:1 with labels offset 1,1 notitle
GP
