#!/usr/bin/env bash
# plot_curves.sh OUT.png TITLE LABEL=LOG [LABEL=LOG ...]: training curves from til-train
# --log files (TSV with a header: epoch, loss, ..., valid_recall@20, ...): validation
# Recall@20 (left axis) and training loss (right axis) per epoch, one colour per run.
# Written to a temporary file and renamed. Needs gnuplot.
set -euo pipefail
out=$1 title=$2
shift 2
plots=""
for spec in "$@"; do
    label=${spec%%=*} log=${spec#*=}
    [ -s "$log" ] || { echo "plot_curves.sh: $log: missing or empty" >&2; exit 1; }
    # columns by name from the header, so added columns do not break the plot
    rc=$(grep -v '^#' "$log" | head -n 1 | tr '\t' '\n' | grep -n '^valid_recall@' | head -n 1 | cut -d: -f1)
    lc=$(grep -v '^#' "$log" | head -n 1 | tr '\t' '\n' | grep -n '^loss$' | cut -d: -f1)
    plots="$plots${plots:+, }'$log' using 1:$rc with linespoints title '$label valid Recall@20' axes x1y1"
    plots="$plots, '$log' using 1:$lc with lines dashtype 2 title '$label train loss' axes x1y2"
done
. "$(dirname "$0")/gnuplot.sh"
plot_png "$out" "$title" <<GP
set datafile missing 'NA'
set key autotitle columnhead
set xlabel 'epoch'
set ylabel 'validation Recall@20 (fraction of held-out items in the top 20)'
set y2label 'training loss (BPR + L2, per triplet)'
set ytics nomirror
set y2tics
set grid
set key bottom right
plot $plots
GP
