#!/usr/bin/env bats
# til-split: command line, exit statuses, pipes, determinism, atomic outputs.
load helpers
load fixtures

setup() {
    D="$BATS_TEST_TMPDIR"
    mk_inter "$D/all.til"
}

@test "til-split --help prints usage and the rule, exits 0" {
    run "$BIN/til-split" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"usage: til-split"* ]]
    [[ "$output" == *"max(1, floor(n*A/S))"* ]]
}

@test "til-split rejects bad flags and arguments with usage and status 2" {
    run "$BIN/til-split" --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-split"* ]]
    run "$BIN/til-split" --train a --valid b "$D/all.til"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--test"* ]]
    run "$BIN/til-split" --train - --valid b --test - "$D/all.til"
    [ "$status" -eq 2 ]
    [[ "$output" == *"at most one output"* ]]
    run "$BIN/til-split" --train a --valid b --test c --ratio 8:1 "$D/all.til"
    [ "$status" -eq 2 ]
    [[ "$output" == *"ratio"* ]]
    run "$BIN/til-split" --train a --valid b --test c --seed -3 "$D/all.til"
    [ "$status" -eq 2 ]
    run "$BIN/til-split" --train a --test c "$D/all.til"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--valid is required"* ]]
}

@test "til-split names a bad input file and exits 1, writing nothing" {
    echo "not binary" > "$D/bad.til"
    run "$BIN/til-split" --train "$D/tr" --valid "$D/va" --test "$D/te" "$D/bad.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.til"* ]]
    [ ! -e "$D/tr" ] && [ ! -e "$D/va" ] && [ ! -e "$D/te" ]
    mk_inter "$D/nots.til" 3
    run "$BIN/til-split" --temporal --train "$D/tr" --valid "$D/va" --test "$D/te" "$D/nots.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nots.til"*"timestamps"* ]]
    [ ! -e "$D/tr" ]
}

@test "til-split partitions the input and reports a summary" {
    run "$BIN/til-split" --train "$D/tr" --valid "$D/va" --test "$D/te" "$D/all.til"
    [ "$status" -eq 0 ]
    [[ "$output" == *"train "*", valid "*", test "*"interactions"* ]]
    [[ "$output" == *"with empty valid"* ]]
    cat <("$BIN/til-cat" "$D/tr") <("$BIN/til-cat" "$D/va") <("$BIN/til-cat" "$D/te") | sort > "$D/union"
    "$BIN/til-cat" "$D/all.til" | sort > "$D/orig"
    cmp "$D/union" "$D/orig"
    for f in tr va te; do
        "$BIN/til-cat" --stats "$D/$f" | grep -qx $'users\t40'
        "$BIN/til-cat" --stats "$D/$f" | grep -qx $'columns\tuser item rating timestamp'
    done
}

@test "til-split reads stdin and writes one output to a pipe" {
    "$BIN/til-split" -q --train - --valid "$D/va" --test "$D/te" < "$D/all.til" | "$BIN/til-cat" --stats > "$D/st"
    grep -q $'^users\t40$' "$D/st"
    "$BIN/til-split" -q --train "$D/tr" --valid "$D/va" --test "$D/te" "$D/all.til"
    "$BIN/til-cat" --stats "$D/tr" | sed 1d > "$D/st2"
    sed 1d "$D/st" | cmp - "$D/st2"
}

@test "til-split is byte-identical for a seed and differs for another" {
    "$BIN/til-split" -q --seed 3 --train "$D/a1" --valid "$D/b1" --test "$D/c1" "$D/all.til"
    "$BIN/til-split" -q --seed 3 --train "$D/a2" --valid "$D/b2" --test "$D/c2" "$D/all.til"
    "$BIN/til-split" -q --seed 4 --train "$D/a3" --valid "$D/b3" --test "$D/c3" "$D/all.til"
    cmp "$D/a1" "$D/a2" && cmp "$D/b1" "$D/b2" && cmp "$D/c1" "$D/c2"
    ! cmp -s "$D/c1" "$D/c3"
}

@test "til-split --temporal puts each user's latest records in test" {
    "$BIN/til-split" -q --temporal --train "$D/tr" --valid "$D/va" --test "$D/te" "$D/all.til"
    # per user: max train timestamp <= min test timestamp
    join -t $'\t' <("$BIN/til-cat" "$D/tr" | sort -t $'\t' -k1,1 -k4,4n | awk -F'\t' '{m[$1]=$4} END {for (u in m) print u "\t" m[u]}' | sort) \
                  <("$BIN/til-cat" "$D/te" | sort -t $'\t' -k1,1 -k4,4nr | awk -F'\t' '{m[$1]=$4} END {for (u in m) print u "\t" m[u]}' | sort) |
        awk -F'\t' '$2 > $3 { bad = 1 } END { exit bad }'
}

@test "til-split with a 0 middle part needs no --valid; outputs are atomic (no temporaries left)" {
    run "$BIN/til-split" --ratio 0.9:0:0.1 --train "$D/tr" --test "$D/te" "$D/all.til"
    [ "$status" -eq 0 ]
    [[ "$output" == *"valid 0"* ]]
    run "$BIN/til-split" --train "$D/tr2" --valid "$D/va2" --test "$D/nodir/te" "$D/all.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nodir/te"* ]]
    [ ! -e "$D/tr2" ] && [ ! -e "$D/va2" ]
    [ -z "$(ls "$D" | grep '\.tmp\.')" ]
}
