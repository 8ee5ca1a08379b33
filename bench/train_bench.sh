#!/usr/bin/env bash
# train_bench.sh: til-train (MF-BPR) seconds per training epoch against the
# PyTorch peer (../shared/bench/torch_peer.py) on the Gowalla seed-2020 split,
# same threads, same semantics (dense Adam; lazy variants too), lr 1e-3 reg 1e-4.
# "s/epoch" = the batch loop only (no sampling, no evaluation), median of
# epochs 2..N, as the peer measures it. Both run in the same invocation (the
# machine is shared: only same-run ratios mean anything). Skips cleanly when
# ../shared or python3-torch is absent.
#   EPOCHS=6 THREADS=2 bench/train_bench.sh
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SPLIT="$ROOT/../shared/bench/split_seed2020"
PEER="$ROOT/../shared/bench/torch_peer.py"
EPOCHS=${EPOCHS:-6}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
echo "== train_bench: MF-BPR s/epoch, til-train vs torch_peer.py, $THREADS threads, $EPOCHS epochs"
if [ ! -d "$SPLIT" ] || [ ! -f "$PEER" ]; then
    echo "train_bench: SKIP (../shared/bench not present)"
    exit 0
fi
have_torch=1
$PY -c 'import torch' 2>/dev/null || { have_torch=0; echo "train_bench: torch not installed: peer runs skipped"; }
W="$ROOT/out/bench/train"
mkdir -p "$W"
# Interaction files from the peer's adjacency split ("user item item ...").
# n_users/n_items: the whole dataset's (max id + 1 over the three files).
if [ ! -s "$W/test.til" ]; then
    read -r NU NI < <(for f in train valid test; do zcat "$SPLIT/$f.txt.gz"; done |
        awk '{ if ($1 > u) u = $1; for (k = 2; k <= NF; k++) if ($k > m) m = $k } END { print u + 1, m + 1 }')
    for f in train valid test; do
        "$ROOT/bin/til-mkdata" adj --users "$NU" --items "$NI" "$SPLIT/$f.txt.gz" "$W/$f.til" || exit 1
    done
fi

til_run() { # optim -> prints "median_s peak_rss"
    "$ROOT/bin/til-train" --train "$W/train.til" --valid "$W/valid.til" -o "$W/m-$1.til" --epochs "$EPOCHS" \
        --eval-every 100000 --threads "$THREADS" --optim "$1" 2>"$W/til-$1.err" >/dev/null || {
        echo "til-train failed:" >&2; cat "$W/til-$1.err" >&2; return 1; }
    echo "$(sed -n 's/.*median \([0-9.]*\) s\/epoch.*/\1/p' "$W/til-$1.err")" \
        "$(sed -n 's/.*peak RSS \([0-9.]*\) \(.*\)$/\1\2/p' "$W/til-$1.err")"
}
peer_run() { # optim -> prints "median_s peak_rss_mb"
    $PY "$PEER" --model mf --epochs "$EPOCHS" --eval-every 0 --eval-at '' --no-final-eval --threads "$THREADS" \
        --lr 1e-3 --reg 1e-4 --optim "$1" --json-out "$W/peer-$1.json" >"$W/peer-$1.log" 2>&1 || {
        echo "peer failed:" >&2; tail -5 "$W/peer-$1.log" >&2; return 1; }
    $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["median_train_s_ep2plus"], d["peak_rss_mb"])' "$W/peer-$1.json"
}

read -r til_dense til_dense_rss < <(til_run adam)
read -r til_lazy til_lazy_rss < <(til_run lazy-adam)
printf 'til-train  adam (dense, exact lazy)   %8.3f s/epoch   peak RSS %s\n' "$til_dense" "$til_dense_rss"
printf 'til-train  lazy-adam (SparseAdam)     %8.3f s/epoch   peak RSS %s\n' "$til_lazy" "$til_lazy_rss"
if [ "$have_torch" = 1 ]; then
    read -r peer_dense peer_dense_rss < <(peer_run adam)
    read -r peer_sparse peer_sparse_rss < <(peer_run sparse_adam)
    printf 'torch peer adam (dense)               %8.3f s/epoch   peak RSS %s MiB\n' "$peer_dense" "$peer_dense_rss"
    printf 'torch peer sparse_adam                %8.3f s/epoch   peak RSS %s MiB\n' "$peer_sparse" "$peer_sparse_rss"
    awk -v a="$peer_dense" -v b="$til_dense" -v c="$peer_sparse" -v d="$til_lazy" 'BEGIN {
        printf "RATIO dense Adam: til-train is %.1fx faster than the peer per epoch (target >= 5x)\n", a / b
        printf "RATIO lazy:       til-train lazy-adam is %.1fx faster than the peer sparse_adam\n", c / d }'
fi
