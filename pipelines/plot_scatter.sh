#!/usr/bin/env bash
# plot_scatter.sh OUT.png TITLE XLABEL YLABEL DATA: labelled points from a TSV with a header
# "label x y"; one colour per label.
set -euo pipefail
out=$1 title=$2 xlabel=$3 ylabel=$4 data=$5
command -v gnuplot >/dev/null || { echo "plot_scatter.sh: gnuplot not installed" >&2; exit 1; }
tmp=$(mktemp "$out.tmp.XXXXXX")
gnuplot <<GP
set terminal pngcairo size 900,540 noenhanced
set output '$tmp'
set datafile separator '\t'
set title '$title'
set xlabel '$xlabel'
set ylabel '$ylabel'
set grid
unset key
set offsets graph 0.05, graph 0.15, graph 0.1, graph 0.1
plot '$data' using 2:3:(\$0 + 1) with points pointsize 2 pointtype 7 linecolor variable notitle, \
     '$data' using 2:3:1 with labels offset 1,1 notitle
GP
mv "$tmp" "$out"
