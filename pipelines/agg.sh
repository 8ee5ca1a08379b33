#!/bin/sh
# agg.sh LABEL=RESULTS...: mean of each metric over the seeds of each results file, as TSV
# "label dataset backbone method metric k mean n" (one line per metric@k). A bare
# RESULTS (no '=') gets its file name as label.
set -eu
for spec in "$@"; do
    case "$spec" in *=*) label=${spec%%=*} f=${spec#*=} ;; *) label=$(basename "$spec") f=$spec ;; esac
    [ -s "$f" ] || { echo "agg.sh: $f: missing or empty" >&2; exit 1; }
    awk -F'\t' -v L="$label" '
        /^#/ || $1 == "dataset" { next }
        { key = $1 "\t" $2 "\t" $3 "\t" $5 "\t" $6; s[key] += $7; n[key]++; if (!(key in o)) { o[key] = ++m; ord[m] = key } }
        END { for (i = 1; i <= m; i++) { k = ord[i]; printf "%s\t%s\t%.9g\t%d\n", L, k, s[k] / n[k], n[k] } }' "$f"
done
