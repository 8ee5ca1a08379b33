#!/bin/sh
# select.sh RUN.valid.tsv...: the runs of one grid, each <cfg>/s<seed>.valid.tsv with its
# <cfg>/s<seed>.test.tsv beside it (til-eval TSV: dataset backbone method seed metric k value).
# Picks the configuration with the best mean validation Recall@20 over its seeds (ties: first
# in name order) and prints a comment naming it, then the test rows of that configuration for
# the seeds given. Only the files named are read: other configurations in the same directory
# (an earlier grid, fig5's cluster sweep, an interrupted run) never take part.
set -eu
[ $# -gt 0 ] || { echo "usage: select.sh RUN.valid.tsv..." >&2; exit 2; }
best=$(for f in "$@"; do
        cfg=$(basename "$(dirname "$f")")
        awk -F'\t' -v c="$cfg" '$5 == "recall" && $6 == "20" { print c "\t" $7 }' "$f"
    done | awk -F'\t' '{ s[$1] += $2; n[$1]++ } END { for (c in s) printf "%s\t%.9f\n", c, s[c] / n[c] }' |
    sort -t "$(printf '\t')" -k2,2gr -k1,1 | head -n 1)
[ -n "$best" ] || { echo "select.sh: no validation Recall@20 in $*" >&2; exit 1; }
cfg=$(printf '%s' "$best" | cut -f1)
printf '# selected %s (mean valid recall@20 %s)\n' "$cfg" "$(printf '%s' "$best" | cut -f2)"
first=1
for f in "$@"; do
    [ "$(basename "$(dirname "$f")")" = "$cfg" ] || continue
    t=${f%.valid.tsv}.test.tsv
    [ -s "$t" ] || { echo "select.sh: $t: missing" >&2; exit 1; }
    if [ $first = 1 ]; then cat "$t"; first=0; else tail -n +2 "$t"; fi
done
