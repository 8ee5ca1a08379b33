#!/usr/bin/env bash
# Full-ranking evaluation at Gowalla size (29,858 users x 40,981 items, d 64,
# k 20): til-eval against (a) the sgemm alone over the same blocks and threads
# (the arithmetic floor, measured inside the same til-eval process) and (b) the
# same evaluation in NumPy (bench/eval_numpy.py), all in this one run, and
# checks that NumPy's metrics equal til-eval's.
# Data: ../shared/bench/split_seed2020 when readable, else a random split of the
# same size. Model: til-mkmodel --from-train (item-CF-like, so metrics are not ~0).
# Env: EVAL_BENCH_REPS (default 3: medians), EVAL_BENCH_THREADS (default all CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
PY=/usr/bin/python3
REPS=${EVAL_BENCH_REPS:-3}
THREADS=${EVAL_BENCH_THREADS:-$(nproc)}
NU=29858 NI=40981
SPLIT=../shared/bench/split_seed2020
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== eval bench: Gowalla size ($NU users x $NI items, d 64, k 20), $THREADS threads, $REPS reps"
if [ -r "$SPLIT/train.txt.gz" ] && [ -r "$SPLIT/valid.txt.gz" ] && [ -r "$SPLIT/test.txt.gz" ]; then
    echo "data: $SPLIT (seed-2020 8:1:1 split)"
    for s in train valid test; do cp "$SPLIT/$s.txt.gz" "$work/$s.txt.gz"; done
else
    echo "data: random split of the same size ($SPLIT not readable)"
    $PY - "$work" "$NU" "$NI" <<'PY'
import gzip, sys, numpy as np
d, nu, ni = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(2020)
f = {s: gzip.open(f"{d}/{s}.txt.gz", "wt") for s in ("train", "valid", "test")}
for u in range(nu):
    items = rng.choice(ni, size=int(rng.integers(10, 60)), replace=False)
    n_tr = max(1, 8 * len(items) // 10); n_va = min(len(items) // 10, len(items) - n_tr)
    for s, part in (("train", items[:n_tr]), ("valid", items[n_tr:n_tr + n_va]), ("test", items[n_tr + n_va:])):
        if len(part): f[s].write(f"{u} " + " ".join(map(str, part)) + "\n")
for x in f.values(): x.close()
PY
fi
for s in train valid test; do
    "$BIN/til-mkinter" --adj --users $NU --items $NI -o "$work/$s.til" "$work/$s.txt.gz"
done
"$BIN/til-mkmodel" --from-train "$work/train.til" --dim 64 --seed 1 -o "$work/model.til"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$work/sg"; : >"$work/ev"; : >"$work/np"
for r in $(seq "$REPS"); do
    out=$("$BIN/til-eval" -m "$work/model.til" -r "$work/train.til" -v "$work/valid.til" -t "$work/test.til" \
        -k 20 -j "$THREADS" --bench-sgemm-only)
    awk '$1=="sgemm_only_s"{print $2}' <<<"$out" >>"$work/sg"
    awk '$1=="eval_s"{print $2}' <<<"$out" >>"$work/ev"
    OPENBLAS_NUM_THREADS=$THREADS $PY bench/eval_numpy.py "$work/model.til" "$work/train.txt.gz" \
        "$work/valid.txt.gz" "$work/test.txt.gz" $NU $NI -k 20 >"$work/np.out"
    awk '$1=="seconds"{print $2}' "$work/np.out" >>"$work/np"
    printf 'rep %d: sgemm-only %s s, til-eval %s s, numpy %s s\n' "$r" "$(tail -1 "$work/sg")" \
        "$(tail -1 "$work/ev")" "$(tail -1 "$work/np")"
done
sg=$(median <"$work/sg") ev=$(median <"$work/ev") np=$(median <"$work/np")
"$BIN/til-eval" -m "$work/model.til" -r "$work/train.til" -v "$work/valid.til" -t "$work/test.til" -k 20 \
    -j "$THREADS" -f tsv | awk 'NR>1{print $5"\t"$6"\t"$7}' >"$work/til.tsv"
echo "metrics (til-eval | numpy | |diff|):"
awk -F'\t' 'NR==FNR{v[$1]=$3; next} $1!="seconds"{d=v[$1]-$3; if(d<0)d=-d; if(d>m)m=d;
    printf "  %-9s@%-2s %.9f | %.9f | %.2g\n", $1, $2, v[$1], $3, d} END{printf "%.3g\n", m > "/dev/stderr"}' \
    "$work/til.tsv" "$work/np.out" 2>"$work/maxdiff"
diff=$(cat "$work/maxdiff")
echo "max |til-eval - numpy| = $diff ($(awk -v d="$diff" 'BEGIN{print (d <= 1e-6) ? "agree to 1e-6" : "DISAGREE"}'))"
printf 'median seconds: sgemm-only %s, til-eval %s, numpy %s\n' "$sg" "$ev" "$np"
awk -v sg="$sg" -v ev="$ev" -v np="$np" 'BEGIN {
    printf "til-eval / sgemm-only = %.2fx (target <= 1.5)\n", ev / sg;
    printf "numpy / til-eval      = %.1fx (target >= 3)\n", np / ev }'
