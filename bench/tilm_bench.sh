#!/usr/bin/env bash
# tilm_bench.sh: CPU seconds per epoch of BPR, TIL-UI, TIL-MI and TIL-MIK (MF,
# Gowalla seed-2020 split, dim 64, batch 5000, 1 thread, OpenBLAS 1 thread,
# clustering active from the first step: --pretrain-epochs 0) and their ratios
# to BPR, all in the same invocation. CPU time (user + sys) rather than wall
# time because the machine is shared: cpu(--epochs 4) - cpu(--epochs 1) is three
# epochs of sampling + training (loading and the final evaluation cancel).
# Skips cleanly when ../shared is absent.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SPLIT="$ROOT/../shared/bench/split_seed2020"
echo "== tilm_bench: CPU s/epoch of bpr, til-ui, til-mi, til-mik (MF, Gowalla, 1 thread)"
if [ ! -d "$SPLIT" ]; then
    echo "tilm_bench: SKIP (../shared/bench not present)"
    exit 0
fi
W="$ROOT/out/bench/tilm"
mkdir -p "$W"
if [ ! -s "$W/valid.til" ]; then
    read -r NU NI < <(for f in train valid test; do zcat "$SPLIT/$f.txt.gz"; done |
        awk '{ if ($1 > u) u = $1; for (k = 2; k <= NF; k++) if ($k > m) m = $k } END { print u + 1, m + 1 }')
    for f in train valid; do
        "$ROOT/bin/til-mkdata" adj --users "$NU" --items "$NI" "$SPLIT/$f.txt.gz" "$W/$f.til" || exit 1
    done
fi
export OPENBLAS_NUM_THREADS=1
# cpu(--epochs 4) - cpu(--epochs 1) = three epochs; REPS rounds, methods
# interleaved within a round, the smallest figure per method kept (the least
# disturbed: on a shared machine the spread between rounds was +-10 %).
REPS=${REPS:-3}
METHODS="bpr til-ui til-mi til-mik"
for r in $(seq "$REPS"); do
    for m in $METHODS; do
        for n in 1 4; do
            /usr/bin/time -f "%U %S" -o "$W/cpu-$m-$n" "$ROOT/bin/til-train" --train "$W/train.til" \
                --valid "$W/valid.til" -o "$W/m.til" --epochs $n --eval-every 100000 --threads 1 --method $m \
                --pretrain-epochs 0 -q || exit 1
        done
        awk 'NR == FNR { a = $1 + $2; next } { printf "%.3f\n", ($1 + $2 - a) / 3 }' "$W/cpu-$m-1" "$W/cpu-$m-4" \
            >> "$W/round-$m"
    done
done
base=
for m in $METHODS; do
    s=$(sort -n "$W/round-$m" | head -1)
    all=$(tr '\n' ' ' < "$W/round-$m")
    rm -f "$W/round-$m"
    [ -z "$base" ] && base=$s
    echo "$m cpu_s/epoch $s ratio_to_bpr $(awk -v a="$s" -v b="$base" 'BEGIN { printf "%.2f", a / b }') (rounds: $all)"
done
echo "OpenBLAS kernels: $(OPENBLAS_VERBOSE=2 "$ROOT/bin/til-train" --help 2>&1 | sed -n "s/^Core: //p" | head -1) (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
