#!/usr/bin/env bats
# The make pipeline on the demo dataset: incremental rebuilds, parallel safety,
# interrupted stages. Each test uses its own OUT folder.
load helpers

mk() { make --no-print-directory -C "$ROOT" OUT="$OUT" GRID=demo SEEDS=1 EPOCHS=8 PATIENCE=4 THREADS=1 "$@"; }

setup() {
    OUT="$BATS_TEST_TMPDIR/out"
}

@test "pipeline: results file is produced and a second make runs nothing" {
    run mk "$OUT/demo/mf.bpr.results"
    [ "$status" -eq 0 ]
    [ -s "$OUT/demo/mf.bpr.results" ]
    grep -q '^# selected lr' "$OUT/demo/mf.bpr.results"
    grep -qP '^demo\tmf\tbpr\t1\trecall\t20\t0\.' "$OUT/demo/mf.bpr.results"
    run mk "$OUT/demo/mf.bpr.results"
    [ "$status" -eq 0 ]
    ! grep -q 'bin/til-' <<<"$output"
}

@test "pipeline: touching the split reruns training, evaluation and selection only" {
    mk "$OUT/demo/mf.bpr.results" >/dev/null 2>&1
    sleep 1
    touch "$OUT/demo/split/train.til"
    run mk -n "$OUT/demo/mf.bpr.results"
    [ "$status" -eq 0 ]
    grep -q 'bin/til-train' <<<"$output"
    grep -q 'bin/til-eval' <<<"$output"
    grep -q 'select.sh' <<<"$output"
    ! grep -q 'bin/til-preprocess' <<<"$output"
    ! grep -q 'bin/til-split' <<<"$output"
    ! grep -q 'bin/til-synth' <<<"$output"
}

@test "pipeline: make -j2 gives the same results as make -j1" {
    OUT="$BATS_TEST_TMPDIR/j1" mk -j1 "$BATS_TEST_TMPDIR/j1/demo/mf.bpr.results" >/dev/null 2>&1
    OUT="$BATS_TEST_TMPDIR/j2" mk -j2 "$BATS_TEST_TMPDIR/j2/demo/mf.bpr.results" >/dev/null 2>&1
    cmp "$BATS_TEST_TMPDIR/j1/demo/mf.bpr.results" "$BATS_TEST_TMPDIR/j2/demo/mf.bpr.results"
    cmp "$BATS_TEST_TMPDIR/j1/demo/split/train.til" "$BATS_TEST_TMPDIR/j2/demo/split/train.til"
}

@test "pipeline: a killed training stage leaves no model and no temporary behind" {
    mk "$OUT/demo/split/train.til" >/dev/null 2>&1
    make --no-print-directory -C "$ROOT" OUT="$OUT" GRID=demo SEEDS=1 EPOCHS=100000 PATIENCE=100000 THREADS=1 \
        "$OUT/demo/mf/bpr/lr1e-2_reg1e-4/s1.model" >/dev/null 2>&1 &
    mpid=$!
    found=0
    for _ in $(seq 100); do pgrep -f "til-train.*$OUT" >/dev/null && { found=1; break; }; sleep 0.1; done
    [ "$found" -eq 1 ]
    sleep 0.5
    pkill -TERM -f "til-train.*$OUT" || true
    wait "$mpid" || true
    [ ! -e "$OUT/demo/mf/bpr/lr1e-2_reg1e-4/s1.model" ]
    [ -z "$(find "$OUT" -name '*.tmp.*')" ]
}

@test "pipeline: user-facing name <dataset>.<method>.results prints the results" {
    run mk demo.bpr.results
    [ "$status" -eq 0 ]
    [[ "$output" == *"# selected lr"* ]]
    [[ "$output" == *"recall"* ]]
}

@test "figures: table2 and fig4 are produced on the demo data (PNG and TSV)" {
    command -v gnuplot >/dev/null || skip "gnuplot not installed"
    run mk T2_DATASETS=demo FIG4_DATASET=demo FIG4_CFG=lr1e-2_reg1e-4_a1_g1e-3 \
        TRAIN_EXTRA_til-mi="--clusters 5 --pretrain-epochs 2" table2 fig4
    [ "$status" -eq 0 ]
    grep -qE '^\| demo \| [0-9]+ \| [0-9]+ \| [0-9]+ \|' "$OUT/table2.md"
    [ "$(grep -c '^rating(u,i)=[45]' "$OUT/fig4.tsv")" -eq 2 ]
    [ "$(head -c 4 "$OUT/fig4.png" | od -An -c | tr -d ' ')" = "211PNG" ]
}

@test "pipeline: selection reads only the grid's runs (a stray configuration directory is ignored)" {
    mk "$OUT/demo/mf.bpr.results" >/dev/null 2>&1
    cp "$OUT/demo/mf.bpr.results" "$BATS_TEST_TMPDIR/before"
    # an unfinished run of another grid, and a better-looking one without its test file
    mkdir -p "$OUT/demo/mf/bpr/lr9e-9_reg9e-9" "$OUT/demo/mf/bpr/lr8e-8_reg8e-8"
    head -1 "$(ls "$OUT"/demo/mf/bpr/*/s1.valid.tsv | head -1)" > "$OUT/demo/mf/bpr/lr8e-8_reg8e-8/s1.valid.tsv"
    printf 'demo\tmf\tbpr\t1\trecall\t20\t0.999\n' >> "$OUT/demo/mf/bpr/lr8e-8_reg8e-8/s1.valid.tsv"
    rm "$OUT/demo/mf.bpr.results"
    run mk "$OUT/demo/mf.bpr.results"
    [ "$status" -eq 0 ]
    cmp "$BATS_TEST_TMPDIR/before" "$OUT/demo/mf.bpr.results"
    # select.sh itself: only the files named count; a missing test file is an error
    run "$ROOT/pipelines/select.sh" "$OUT/demo/mf/bpr/lr8e-8_reg8e-8/s1.valid.tsv"
    [ "$status" -eq 1 ]
    [[ "$output" == *"s1.test.tsv: missing"* ]]
    run "$ROOT/pipelines/select.sh"
    [ "$status" -eq 2 ]
}
