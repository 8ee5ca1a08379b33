#!/usr/bin/env bats
# til-train --backbone lightgcn|neumf: learning, determinism, resume, model files.
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
    "$BIN/til-mkdata" synth --users 200 --items 300 --per-user 20 --seed 3 "$D/s"
    T=(--train "$D/s.train.til" --valid "$D/s.valid.til" --batch 400 --lr 0.01 --quiet)
}

@test "lightgcn learns: valid Recall@20 well above random, test line printed" {
    run "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 15 -o "$D/m.til" --log "$D/log.tsv" --test "$D/s.test.til"
    [ "$status" -eq 0 ]
    # random ranking: Recall@20 ~ 20/280 = 0.07
    awk -F'\t' 'NR > 1 {r = $9} END {exit !(r > 0.25)}' "$D/log.tsv"
    echo "$output" | awk -F'\t' '/^test/ {exit !($5 > 0.2)}'
    run "$BIN/til-cat" "$D/m.til"
    [[ "$output" == *"backbone = lightgcn"* && "$output" == *"layers = 1"* && "$output" == *"tensor user f32 200x64"* ]]
}

@test "lightgcn: same bytes for 1 and 2 threads; layers change the model" {
    "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 3 --threads 1 -o "$D/a.til"
    "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 3 --threads 2 -o "$D/b.til"
    cmp "$D/a.til" "$D/b.til"
    "$BIN/til-train" "${T[@]}" --backbone lightgcn --layers 2 --epochs 3 -o "$D/c.til"
    ! cmp -s "$D/a.til" "$D/c.til"
    run "$BIN/til-train" "${T[@]}" --backbone lightgcn --layers 0 -o "$D/x.til"
    [ "$status" -eq 2 ]
}

@test "lightgcn: 4 epochs straight == 2 + resume 2; layers must match on resume" {
    "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 4 -o "$D/full.til"
    "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 2 -o "$D/half.til" --checkpoint "$D/ck"
    "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 4 -o "$D/res.til" --resume "$D/ck"
    cmp "$D/full.til" "$D/res.til"
    run "$BIN/til-train" "${T[@]}" --backbone lightgcn --layers 2 --epochs 4 -o "$D/x.til" --resume "$D/ck"
    [ "$status" -eq 1 ]
    [[ "$output" == *"checkpoint has layers"* ]]
}

@test "lightgcn forward cache (reuse when param is bit-equal): same bytes as TIL_LIGHTGCN_NOCACHE=1, bpr and til-ui" {
    for m in "bpr" "til-ui --meta-batch fresh" "til-ui --meta-holdout 0.2 --layers 2"; do
        "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 2 --method $m --threads 2 -o "$D/c.til"
        TIL_LIGHTGCN_NOCACHE=1 "$BIN/til-train" "${T[@]}" --backbone lightgcn --epochs 2 --method $m --threads 1 -o "$D/n.til"
        cmp "$D/c.til" "$D/n.til"
    done
}

@test "neumf learns; its model file carries the tower and is scored through til_scorer_from_model (--test)" {
    run "$BIN/til-train" "${T[@]}" --backbone neumf --epochs 12 -o "$D/m.til" --log "$D/log.tsv" --test "$D/s.test.til"
    [ "$status" -eq 0 ]
    awk -F'\t' 'NR > 1 {r = $9} END {exit !(r > 0.25)}' "$D/log.tsv"
    echo "$output" | awk -F'\t' '/^test/ {exit !($5 > 0.2)}'
    run "$BIN/til-cat" "$D/m.til"
    [[ "$output" == *"scorer = neumf"* && "$output" == *"tower = 64-32-16"* ]]
    [[ "$output" == *"tensor neumf.W1 f32 64x32"* && "$output" == *"tensor neumf.W2 f32 32x16"* && "$output" == *"tensor neumf.wp f32 1x48"* ]]
    run "$BIN/til-train" "${T[@]}" --backbone neumf --dim 30 -o "$D/x.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"multiple of 4"* ]]
}

@test "neumf: same bytes for 1 and 2 threads; 4 epochs straight == 2 + resume 2" {
    "$BIN/til-train" "${T[@]}" --backbone neumf --epochs 4 --threads 1 -o "$D/a.til"
    "$BIN/til-train" "${T[@]}" --backbone neumf --epochs 4 --threads 2 -o "$D/b.til"
    cmp "$D/a.til" "$D/b.til"
    "$BIN/til-train" "${T[@]}" --backbone neumf --epochs 2 --threads 2 -o "$D/h.til" --checkpoint "$D/ck"
    "$BIN/til-train" "${T[@]}" --backbone neumf --epochs 4 --threads 2 -o "$D/r.til" --resume "$D/ck"
    cmp "$D/a.til" "$D/r.til"
}
