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
# interleaved within a round (on this shared VM single figures drifted by
# +-15 % between rounds, more than the effects measured).
REPS=${REPS:-3}
METHODS="bpr til-ui til-mi til-mik"
rm -f "$W"/round-*
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
# per method: the smallest s/epoch over the rounds, and the median over rounds
# of the ratio to BPR's figure of the same round (robust to drift between rounds)
for m in $METHODS; do
    s=$(sort -n "$W/round-$m" | head -1)
    all=$(tr '\n' ' ' < "$W/round-$m")
    med=$(paste "$W/round-bpr" "$W/round-$m" | awk '{ print $2 / $1 }' | sort -n |
        awk '{ a[NR] = $1 } END { printf "%.2f", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    echo "$m cpu_s/epoch $s ratio_to_bpr $med (per-round s/epoch: $all)"
done
rm -f "$W"/round-*
echo "OpenBLAS kernels: $(OPENBLAS_VERBOSE=2 "$ROOT/bin/til-train" --help 2>&1 | sed -n "s/^Core: //p" | head -1) (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
