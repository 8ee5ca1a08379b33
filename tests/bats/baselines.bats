#!/usr/bin/env bats
# til-train --method for the seven baselines: each learns on a planted dataset,
# each is deterministic, bad options are usage errors.
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
    "$BIN/til-mkdata" synth --users 150 --items 200 --per-user 16 --seed 5 "$D/s"
    T=(--train "$D/s.train.til" --valid "$D/s.valid.til" --batch 300 --lr 0.01 --quiet --drop-warmup 50)
}

@test "baselines: every method beats random on valid Recall@20" {
    # random ranking: Recall@20 ~ 20/184 = 0.11
    for m in wbpr aobpr pris tce rce tce-bpr rce-bpr; do
        "$BIN/til-train" "${T[@]}" --method "$m" --epochs 8 --eval-every 8 -o "$D/$m.til" --log "$D/$m.tsv"
        awk -F'\t' -v m="$m" 'NR > 1 {r = $9} END {if (!(r > 0.3)) print m, r; exit !(r > 0.3)}' "$D/$m.tsv"
        run "$BIN/til-cat" "$D/$m.til"
        [[ "$output" == *"method = $m"* ]]
    done
}

@test "baselines: same seed gives identical model bytes, for 1 and 2 threads" {
    for m in wbpr aobpr pris tce-bpr; do
        "$BIN/til-train" "${T[@]}" --method "$m" --epochs 3 --threads 1 -o "$D/a.til"
        "$BIN/til-train" "${T[@]}" --method "$m" --epochs 3 --threads 2 -o "$D/b.til"
        cmp "$D/a.til" "$D/b.til"
    done
}

@test "baselines: aobpr and pris resume bit-identically from an epoch-end checkpoint" {
    for m in aobpr pris; do
        "$BIN/til-train" "${T[@]}" --method "$m" --epochs 4 -o "$D/full.til"
        "$BIN/til-train" "${T[@]}" --method "$m" --epochs 2 -o "$D/half.til" --checkpoint "$D/ck.til"
        "$BIN/til-train" "${T[@]}" --method "$m" --epochs 4 -o "$D/res.til" --resume "$D/ck.til"
        cmp "$D/full.til" "$D/res.til"
    done
}

@test "baselines: bad method and option values are usage errors" {
    run "$BIN/til-train" "${T[@]}" --method nope -o "$D/m.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"unknown method"* ]]
    for bad in "--drop-rate 0.6" "--negatives 0" "--aobpr-lambda 0" "--pris-within x" "--rce-beta -1"; do
        run "$BIN/til-train" "${T[@]}" $bad -o "$D/m.til"
        [ "$status" -eq 2 ]
    done
}
