#!/usr/bin/env bats
# til-train --backbone mgccf: learning, determinism, resume, model files.
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
    "$BIN/til-mkdata" synth --users 200 --items 300 --per-user 20 --seed 3 "$D/s"
    T=(--train "$D/s.train.til" --valid "$D/s.valid.til" --batch 400 --lr 0.003 --quiet --backbone mgccf)
}

@test "mgccf learns: valid Recall@20 well above random; the model file is scored by dot (--test)" {
    run "$BIN/til-train" "${T[@]}" --epochs 8 -o "$D/m.til" --log "$D/log.tsv" --test "$D/s.test.til"
    [ "$status" -eq 0 ]
    # random ranking: Recall@20 ~ 20/280 = 0.07
    awk -F'\t' 'NR > 1 {r = $9} END {exit !(r > 0.25)}' "$D/log.tsv"
    echo "$output" | awk -F'\t' '/^test/ {exit !($5 > 0.2)}'
    run "$BIN/til-cat" "$D/m.til"
    [[ "$output" == *"backbone = mgccf"* && "$output" == *"mgccf_k = 10"* && "$output" == *"scorer = dot"* ]]
    [[ "$output" == *"tensor user f32 200x64"* && "$output" == *"tensor item f32 300x64"* ]]
    # til-eval scores the model file by itself: the best epoch's valid Recall@20
    best=$(awk -F'\t' 'NR > 1 {r = $9} END {print r}' "$D/log.tsv")
    run "$BIN/til-eval" --model "$D/m.til" --train "$D/s.train.til" --test "$D/s.valid.til" -k 20 -f tsv
    [ "$status" -eq 0 ]
    echo "$output" | awk -F'\t' -v b="$best" '$5 == "recall" {f = 1; ok = $7 - b < 1e-6 && b - $7 < 1e-6} END {exit !(f && ok)}'
}

@test "mgccf: same bytes for 1 and 2 threads; 4 epochs straight == 2 + resume 2; one layer only" {
    "$BIN/til-train" "${T[@]}" --epochs 4 --threads 1 -o "$D/a.til"
    "$BIN/til-train" "${T[@]}" --epochs 4 --threads 2 -o "$D/b.til"
    cmp "$D/a.til" "$D/b.til"
    "$BIN/til-train" "${T[@]}" --epochs 2 --threads 2 -o "$D/h.til" --checkpoint "$D/ck"
    "$BIN/til-train" "${T[@]}" --epochs 4 --threads 1 -o "$D/r.til" --resume "$D/ck"
    cmp "$D/a.til" "$D/r.til"
    run "$BIN/til-train" "${T[@]}" --layers 2 -o "$D/x.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"one Bipar-GCN layer"* ]]
}
