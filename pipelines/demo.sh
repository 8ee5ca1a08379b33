#!/usr/bin/env bash
# make demo: the whole chain on the embedded synthetic dataset, through the same make
# targets as the real datasets: til-synth -> til-preprocess -> til-split -> til-train
# (BPR and the TIL methods) -> til-eval -> selection -> til-report, plus a plot.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
start=$(date +%s.%N)
supported=$(bin/til-train --help 2>&1 || true)
methods=""
for m in ${DEMO_METHODS:-bpr til-ui til-mi}; do
    case "$supported" in *"$m"*) methods="$methods $m" ;; esac
done
targets=$(for m in $methods; do printf ' %s/demo/mf.%s.results' "$OUT" "$m"; done)
echo "demo: synthetic data (til-synth), methods:$methods (log: $OUT/demo/make.log)"
mkdir -p "$OUT/demo"
make --no-print-directory OUT="$OUT" GRID=demo SEEDS=1 EPOCHS=${DEMO_EPOCHS:-60} PATIENCE=15 \
    THREADS=${THREADS:-2} TRAIN_EXTRA_til-mi="--clusters 10 --pretrain-epochs 3" \
    TRAIN_EXTRA_til-mik="--clusters 10" $targets > "$OUT/demo/make.log" 2>&1 ||
    { tail -n 30 "$OUT/demo/make.log" >&2; echo "demo: failed, see $OUT/demo/make.log" >&2; exit 1; }
bin/til-cat --stats "$OUT/demo/all.til" | awk -F'\t' '$1=="users"||$1=="items"||$1=="interactions"{printf "  %s %s", $1, $2} END{print ""}'
bin/til-report --ours til-mi $targets > "$OUT/demo/table.md"
logs=""
for m in $methods; do
    log=$(ls "$OUT"/demo/mf/"$m"/*/s1.log | head -n 1)
    logs="$logs $m=$log"
done
plot=""
if command -v gnuplot >/dev/null; then
    pipelines/plot_curves.sh "$OUT/demo/curves.png" "til demo: MF on synthetic data" $logs && plot="$OUT/demo/curves.png"
fi
echo
echo "Test metrics on held-out items (mean over seeds; higher is better):"
grep -E '^(\| dataset|\|---|.*\| (recall|ndcg)@20 \|)' "$OUT/demo/table.md"
echo
echo "table:  $OUT/demo/table.md"
[ -n "$plot" ] && echo "plot:   $plot (validation Recall@20 and training loss per epoch)"
awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "time:   %.1f s\n", b - a }'
