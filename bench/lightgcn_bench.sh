#!/usr/bin/env bash
# LightGCN (1 layer, BPR, d 64, batch 5000, dense Adam, 2 threads) on Gowalla,
# seed-2020 split: til-train's training seconds per epoch (batch loop, median of
# epochs 2..) against the PyTorch peer's (torch_peer.py, median of epochs 2..),
# measured in the same run, and the ratio. EPOCHS (default 3) epochs each;
# the peer takes ~80 s per epoch on 2 cores. Skips when ../shared is absent.
set -eu
cd "$(dirname "$0")/.."
S=../shared/bench
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-2}
if [ ! -e "$S/split_seed2020/train.txt.gz" ] || [ ! -e "$S/torch_peer.py" ]; then
    echo "lightgcn_bench: ../shared/bench absent, skipped"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
read -r nu ni < <(zcat "$S"/split_seed2020/{train,valid,test}.txt.gz |
    awk '{ if ($1 + 0 > mu) mu = $1 + 0; for (k = 2; k <= NF; k++) if ($k + 0 > mi) mi = $k + 0 } END { print mu + 1, mi + 1 }')
for p in train valid; do
    bin/til-mkdata adj --users "$nu" --items "$ni" "$S/split_seed2020/$p.txt.gz" "$T/$p.til"
done
til=$(bin/til-train --train "$T/train.til" --valid "$T/valid.til" -o "$T/m.til" --backbone lightgcn --layers 1 \
    --threads "$THREADS" --epochs "$EPOCHS" --eval-every 1000000 2>&1 | tail -1)
echo "til-train: $til"
til_s=$(echo "$til" | sed -n 's/.*median \([0-9.]*\) s\/epoch.*/\1/p')
peer=$(/usr/bin/python3 "$S/torch_peer.py" --model lightgcn --layers "1" --threads "$THREADS" --epochs "$EPOCHS" \
    --eval-every 0 --eval-at '' --no-final-eval 2>&1 | grep '^SUMMARY' || true)
peer_s=$(echo "$peer" | sed -n 's/.*"median_train_s_ep2plus": \([0-9.]*\).*/\1/p')
peer_rss=$(echo "$peer" | sed -n 's/.*"peak_rss_mb": \([0-9.]*\).*/\1/p')
echo "lightgcn 1 layer, $THREADS threads, $EPOCHS epochs: til-train ${til_s:-?} s/epoch, torch peer ${peer_s:-?} s/epoch (peak RSS ${peer_rss:-?} MB)"
if [ -n "$til_s" ] && [ -n "$peer_s" ]; then
    awk -v a="$peer_s" -v b="$til_s" 'BEGIN { printf "lightgcn speed-up over the peer: %.1fx\n", a / b }'
fi
