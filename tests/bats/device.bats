#!/usr/bin/env bats
# --device on til-train and til-eval: parsing, usage errors, and the clear
# failure of --device cuda where there is no CUDA backend or no GPU (CI).
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
    "$BIN/til-mkdata" synth --users 100 --items 150 --per-user 10 --seed 3 "$D/s"
    T=(--train "$D/s.train.til" --valid "$D/s.valid.til" --batch 200 --epochs 1 --quiet)
}

@test "--device: unknown device and non-mf/bpr on cuda are usage errors (2)" {
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --device gpu
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-train"* ]]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --device cuda --backbone lightgcn
    [ "$status" -eq 2 ]
    [[ "$output" == *"not yet on cuda"* ]]
    run "$BIN/til-eval" -m "$D/m" -r "$D/s.train.til" -t "$D/s.valid.til" --device tpu
    [ "$status" -eq 2 ]
}

@test "--device cpu is the default path; --device cuda without a GPU exits 1 with the reason" {
    "$BIN/til-train" "${T[@]}" -o "$D/m" --device cpu
    run "$BIN/til-eval" -m "$D/m" -r "$D/s.train.til" -t "$D/s.valid.til" --device cpu
    [ "$status" -eq 0 ]
    run "$BIN/til-train" "${T[@]}" -o "$D/g" --device cuda
    if [ "$status" -ne 0 ]; then
        [ "$status" -eq 1 ]
        [[ "$output" == *"no CUDA device visible"* || "$output" == *"no CUDA backend"* ]]
        [ ! -e "$D/g" ]
    fi
    run "$BIN/til-eval" -m "$D/m" -r "$D/s.train.til" -t "$D/s.valid.til" --device cuda
    if [ "$status" -ne 0 ]; then
        [ "$status" -eq 1 ]
        [[ "$output" == *"no CUDA device visible"* || "$output" == *"no CUDA backend"* ]]
    fi
}
