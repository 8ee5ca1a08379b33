#!/usr/bin/env bats
# til-noise: command line, exit statuses, pipes, determinism, atomic outputs.
load helpers
load fixtures

setup() {
    D="$BATS_TEST_TMPDIR"
    mk_inter "$D/all.til"
    "$BIN/til-split" -q --train "$D/tr" --valid "$D/va" --test "$D/te" "$D/all.til"
}

@test "til-noise --help prints usage and exits 0" {
    run "$BIN/til-noise" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"usage: til-noise"* ]]
    [[ "$output" == *"rating 0 and timestamp -1"* ]]
}

@test "til-noise rejects bad flags and arguments with usage and status 2" {
    run "$BIN/til-noise" --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-noise"* ]]
    run "$BIN/til-noise" -o "$D/o" "$D/tr"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--mode is required"* ]]
    run "$BIN/til-noise" --mode both -o "$D/o" "$D/tr"
    [ "$status" -eq 2 ]
    [[ "$output" == *"pos+neg"* ]]
    run "$BIN/til-noise" --mode pos --ratio -1 -o "$D/o" "$D/tr"
    [ "$status" -eq 2 ]
    run "$BIN/til-noise" --mode pos --ratio 0.5x -o "$D/o" "$D/tr"
    [ "$status" -eq 2 ]
    run "$BIN/til-noise" --mode pos --injected - "$D/tr"
    [ "$status" -eq 2 ]
    [[ "$output" == *"at most one output"* ]]
    [ ! -e "$D/o" ]
}

@test "til-noise names a bad input or excluded file and exits 1" {
    echo "junk" > "$D/bad.til"
    run "$BIN/til-noise" --mode pos -o "$D/o" "$D/bad.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.til"* ]]
    run "$BIN/til-noise" --mode pos -o "$D/o" --exclude "$D/bad.til" "$D/tr"
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.til"* ]]
    printf '0\t1\n' | perl "$FIXDIR/tsv2til.pl" 3 5 2 > "$D/small.til"
    run "$BIN/til-noise" --mode pos -o "$D/o" --exclude "$D/small.til" "$D/tr"
    [ "$status" -eq 1 ]
    [[ "$output" == *"small.til"* ]]
    [ ! -e "$D/o" ]
}

@test "til-noise pos+neg: output = train - removed + injected, injected avoid excluded items" {
    run "$BIN/til-noise" --mode pos+neg -x "$D/va" -x "$D/te" -o "$D/o" --injected "$D/inj" --removed "$D/rem" "$D/tr"
    [ "$status" -eq 0 ]
    [[ "$output" == *"injected "*", removed "* ]]
    "$BIN/til-cat" "$D/tr" | cut -f1,2 | sort > "$D/trp"
    "$BIN/til-cat" "$D/inj" | cut -f1,2 | sort > "$D/injp"
    "$BIN/til-cat" "$D/rem" | cut -f1,2 | sort > "$D/remp"
    "$BIN/til-cat" "$D/o" | cut -f1,2 | sort > "$D/op"
    [ -s "$D/injp" ] && [ -s "$D/remp" ]
    # removed were positives, injected were not, nor held-out items
    [ -z "$(comm -23 "$D/remp" "$D/trp")" ]
    cat <("$BIN/til-cat" "$D/tr") <("$BIN/til-cat" "$D/va") <("$BIN/til-cat" "$D/te") | cut -f1,2 | sort > "$D/allp"
    [ -z "$(comm -12 "$D/injp" "$D/allp")" ]
    comm -23 "$D/trp" "$D/remp" | cat - "$D/injp" | sort | cmp - "$D/op"
    # injected records are marked as noise
    "$BIN/til-cat" "$D/inj" | awk -F'\t' '$3 != 0 || $4 != -1 { bad = 1 } END { exit bad }'
}

@test "til-noise works in a pipe" {
    "$BIN/til-split" -q --train - --valid "$D/va" --test "$D/te" "$D/all.til" |
        "$BIN/til-noise" -q --mode neg | "$BIN/til-cat" --stats > "$D/st"
    grep -q $'^users\t40$' "$D/st"
}

@test "til-noise is byte-identical for a seed and differs for another" {
    "$BIN/til-noise" -q --mode pos+neg --seed 5 -o "$D/a" "$D/tr"
    "$BIN/til-noise" -q --mode pos+neg --seed 5 -o "$D/b" "$D/tr"
    "$BIN/til-noise" -q --mode pos+neg --seed 6 -o "$D/c" "$D/tr"
    cmp "$D/a" "$D/b"
    ! cmp -s "$D/a" "$D/c"
}

@test "til-noise outputs are atomic: a failing output leaves none behind" {
    run "$BIN/til-noise" --mode pos -o "$D/o" --injected "$D/inj" --removed "$D/nodir/rem" "$D/tr"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nodir/rem"* ]]
    [ ! -e "$D/o" ] && [ ! -e "$D/inj" ]
    [ -z "$(ls "$D" | grep '\.tmp\.')" ]
}
