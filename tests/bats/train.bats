#!/usr/bin/env bats
# til-train: command line, exit statuses, determinism, resume, logs, learning.
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
    "$BIN/til-mkdata" synth --users 200 --items 300 --per-user 20 --seed 3 "$D/s"
    T=(--train "$D/s.train.til" --valid "$D/s.valid.til" --batch 400 --lr 0.01 --quiet)
}

@test "til-train --help prints usage and exits 0" {
    run "$BIN/til-train" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"usage: til-train"* ]]
}

@test "til-train rejects bad flags and values with status 2" {
    run "$BIN/til-train" --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-train"* ]]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --dim 0
    [ "$status" -eq 2 ]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --lr abc
    [ "$status" -eq 2 ]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --optim sgd
    [ "$status" -eq 2 ]
    run "$BIN/til-train" "${T[@]}"
    [ "$status" -eq 2 ]
}

@test "til-train names bad data and exits 1" {
    echo hello > "$D/bad.til"
    run "$BIN/til-train" --train "$D/bad.til" --valid "$D/s.valid.til" -o "$D/m" -q
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.til"* ]]
    "$BIN/til-mkdata" synth --users 10 --items 300 --per-user 20 "$D/o"
    run "$BIN/til-train" --train "$D/s.train.til" --valid "$D/o.valid.til" -o "$D/m" -q
    [ "$status" -eq 1 ]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --backbone nope
    [ "$status" -eq 1 ]
    [[ "$output" == *"unknown backbone"* ]]
    [ ! -e "$D/m" ]
}

@test "til-train: same seed gives identical model bytes, for 1 and 2 threads too" {
    "$BIN/til-train" "${T[@]}" --epochs 4 --threads 2 -o "$D/a.til"
    "$BIN/til-train" "${T[@]}" --epochs 4 --threads 2 -o "$D/b.til"
    "$BIN/til-train" "${T[@]}" --epochs 4 --threads 1 -o "$D/c.til"
    cmp "$D/a.til" "$D/b.til"
    cmp "$D/a.til" "$D/c.til"
    "$BIN/til-train" "${T[@]}" --epochs 4 --threads 2 --seed 9 -o "$D/d.til"
    ! cmp -s "$D/a.til" "$D/d.til"
    run "$BIN/til-cat" "$D/a.til"
    [[ "$output" == *"kind = model"* && "$output" == *"tensor user f32 200x64"* && "$output" == *"tensor item f32 300x64"* ]]
    [[ "$output" == *"valid_recall_20 = "* && "$output" == *"lr = 0.01"* ]]
}

@test "til-train: lazy exact Adam gives the same tensors as the eager dense reference (optimised build)" {
    "$BIN/til-train" "${T[@]}" --epochs 5 --optim adam -o "$D/lazy.til"
    "$BIN/til-train" "${T[@]}" --epochs 5 --optim adam-eager -o "$D/eager.til"
    "$BIN/til-train" "${T[@]}" --epochs 5 --optim lazy-adam -o "$D/sparse.til"
    for t in user item; do
        cmp <("$BIN/til-cat" -t $t "$D/lazy.til") <("$BIN/til-cat" -t $t "$D/eager.til")
        ! cmp -s <("$BIN/til-cat" -t $t "$D/lazy.til") <("$BIN/til-cat" -t $t "$D/sparse.til")
    done
}

@test "til-train: 6 epochs straight == 3 + resume 3 (model bytes)" {
    "$BIN/til-train" "${T[@]}" --epochs 6 -o "$D/full.til"
    "$BIN/til-train" "${T[@]}" --epochs 3 -o "$D/half.til" --checkpoint "$D/ck"
    "$BIN/til-train" "${T[@]}" --epochs 6 -o "$D/res.til" --resume "$D/ck"
    cmp "$D/full.til" "$D/res.til"
    run "$BIN/til-cat" "$D/ck"
    [[ "$output" == *"kind = checkpoint"* && "$output" == *"tensor adam_m"* && "$output" == *"tensor adam_last"* ]]
    run "$BIN/til-train" "${T[@]}" --epochs 6 --lr 0.02 -o "$D/x.til" --resume "$D/ck"
    [ "$status" -eq 1 ]
    [[ "$output" == *"checkpoint has lr"* ]]
}

@test "til-train: SIGTERM writes a checkpoint, exits 1, and resuming matches" {
    "$BIN/til-mkdata" synth --users 3000 --items 2000 --per-user 40 --seed 4 "$D/big"
    B=(--train "$D/big.train.til" --valid "$D/big.valid.til" --batch 200 --quiet --eval-every 1000 --threads 1)
    "$BIN/til-train" "${B[@]}" --epochs 400 -o "$D/m.til" --checkpoint "$D/ck" &
    pid=$!
    sleep 1.5
    kill -TERM $pid
    st=0
    wait $pid || st=$?
    [ "$st" -eq 1 ]
    run "$BIN/til-cat" "$D/ck"
    [[ "$output" == *"kind = checkpoint"* ]]
    ep=$(echo "$output" | awk '$1 == "epoch" {print $3}')
    [ "$ep" -lt 400 ]
    # finish at the interrupted epoch + 1, and compare with a straight run
    "$BIN/til-train" "${B[@]}" --epochs "$ep" -o "$D/r.til" --resume "$D/ck"
    "$BIN/til-train" "${B[@]}" --epochs "$ep" -o "$D/s.til"
    cmp "$D/r.til" "$D/s.til"
}

@test "til-train --log writes one TSV line per epoch with the documented columns" {
    "$BIN/til-train" "${T[@]}" --epochs 4 --eval-every 2 -o "$D/m.til" --log "$D/log.tsv"
    [ "$(head -1 "$D/log.tsv")" = "$(printf 'epoch\tloss\ttrain_s\tsample_s\teval_s\tvalid_recall@20\tvalid_ndcg@20\tbest_epoch\tbest_recall@20')" ]
    [ "$(wc -l < "$D/log.tsv")" -eq 5 ]
    [ "$(awk -F'\t' 'NR > 1 && NF != 9' "$D/log.tsv" | wc -l)" -eq 0 ]
    [ "$(awk -F'\t' 'NR == 2 {print $6}' "$D/log.tsv")" = NA ]
    [ "$(awk -F'\t' 'NR == 3 {print ($6 > 0)}' "$D/log.tsv")" = 1 ]
}

@test "til-train learns: valid Recall@20 well above random, loss decreases, test line printed" {
    run "$BIN/til-train" "${T[@]}" --epochs 15 -o "$D/m.til" --log "$D/log.tsv" --test "$D/s.test.til"
    [ "$status" -eq 0 ]
    [[ "$output" == test* ]]
    # random ranking: Recall@20 ~ 20/280 = 0.07; planted clusters make > 0.25 easy
    awk -F'\t' 'NR > 1 {r = $9} END {exit !(r > 0.25)}' "$D/log.tsv"
    awk -F'\t' 'NR == 2 {a = $2} NR > 1 {b = $2} END {exit !(b < a / 2)}' "$D/log.tsv"
    echo "$output" | awk -F'\t' '{exit !($5 > 0.2)}'
}

@test "til-train stops early after --patience epochs without improvement" {
    "$BIN/til-train" "${T[@]}" --lr 0.05 --epochs 200 --patience 5 -o "$D/m.til" --log "$D/log.tsv"
    run "$BIN/til-cat" "$D/m.til"
    [[ "$output" == *"stopped = early"* ]]
    n=$(($(wc -l < "$D/log.tsv") - 1))
    [ "$n" -lt 200 ]
    best=$(echo "$output" | awk '$1 == "epoch" {print $3}')
    [ "$n" -eq $((best + 5)) ]
}
