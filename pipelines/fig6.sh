#!/bin/sh
# fig6.sh RESULTS...: "label seconds recall@20" per results file (<ds>/<bb>.<method>.results):
# the mean over seeds of the summed train_s + sample_s of the selected configuration's logs,
# and its mean test Recall@20.
set -eu
printf 'run\ttraining_s\trecall@20\n'
for f in "$@"; do
    dir=${f%.results}                   # out/ds/bb.method
    bb=$(basename "$dir" | cut -d. -f1) m=$(basename "$dir" | cut -d. -f2)
    cfg=$(sed -n 's/^# selected \([^ ]*\).*/\1/p' "$f")
    logs=$(ls "$(dirname "$dir")/$bb/$m/$cfg"/s*.log)
    secs=$(for l in $logs; do awk -F'\t' '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next } { s += $c["train_s"] + $c["sample_s"] } END { print s }' "$l"; done |
        awk '{ s += $1; n++ } END { printf "%.2f", s / n }')
    rec=$(awk -F'\t' '$5 == "recall" && $6 == "20" { s += $7; n++ } END { printf "%.6f", s / n }' "$f")
    printf '%s/%s\t%s\t%s\n' "$bb" "$m" "$secs" "$rec"
done
