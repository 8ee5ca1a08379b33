#!/bin/sh
# select.sh DIR: DIR holds <cfg>/s<seed>.valid.tsv and .test.tsv (til-eval TSV:
# dataset backbone method seed metric k value). Picks the configuration with the
# best mean validation Recall@20 over its seeds (ties: first in name order) and
# prints a comment naming it, then the test rows of that configuration for every seed.
set -eu
dir=$1
best=$(for f in "$dir"/*/s*.valid.tsv; do
        cfg=$(basename "$(dirname "$f")")
        awk -F'\t' -v c="$cfg" '$5 == "recall" && $6 == "20" { print c "\t" $7 }' "$f"
    done | awk -F'\t' '{ s[$1] += $2; n[$1]++ } END { for (c in s) printf "%s\t%.9f\n", c, s[c] / n[c] }' |
    sort -t "$(printf '\t')" -k2,2gr -k1,1 | head -n 1)
[ -n "$best" ] || { echo "select.sh: no validation results under $dir" >&2; exit 1; }
cfg=$(printf '%s' "$best" | cut -f1)
printf '# selected %s (mean valid recall@20 %s)\n' "$cfg" "$(printf '%s' "$best" | cut -f2)"
first=1
for f in "$dir/$cfg"/s*.test.tsv; do
    if [ $first = 1 ]; then cat "$f"; first=0; else tail -n +2 "$f"; fi
done
