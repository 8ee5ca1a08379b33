#!/usr/bin/env bats
# til-synth: command line, exit statuses, output layout, determinism, atomic outputs.
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
}

@test "til-synth --help prints usage with the defaults and exits 0" {
    run "$BIN/til-synth" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"usage: til-synth"* ]]
    [[ "$output" == *"users (default 1500)"* ]]
}

@test "til-synth rejects bad flags and values with usage and status 2" {
    run "$BIN/til-synth" --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-synth"* ]]
    run "$BIN/til-synth" --users 0
    [ "$status" -eq 2 ]
    [[ "$output" == *"--users"* ]]
    run "$BIN/til-synth" --items 10 --clusters 20
    [ "$status" -eq 2 ]
    [[ "$output" == *"--clusters"* ]]
    run "$BIN/til-synth" --columns 5
    [ "$status" -eq 2 ]
    run "$BIN/til-synth" --noise 1.5
    [ "$status" -eq 2 ]
    run "$BIN/til-synth" extra
    [ "$status" -eq 2 ]
    run "$BIN/til-synth" -o - --truth -
    [ "$status" -eq 2 ]
}

@test "til-synth names an unwritable output, exits 1 and leaves nothing" {
    run "$BIN/til-synth" -q -o "$D/out.tsv" --truth "$D/nodir/truth.tsv"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nodir/truth.tsv"* ]]
    [ ! -e "$D/out.tsv" ]
    [ -z "$(ls "$D" | grep '\.tmp\.')" ]
    run "$BIN/til-synth" -q -o "$D/nodir/out.tsv"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nodir/out.tsv"* ]]
}

@test "til-synth writes u.data lines: 4 columns, ids from 1, ratings 1..5" {
    run "$BIN/til-synth" --users 200 --items 150 --clusters 5 -o "$D/u.data" --truth "$D/truth.tsv"
    [ "$status" -eq 0 ]
    [[ "$output" == *"200 users x 150 items, 5 clusters"* ]]
    awk -F'\t' 'NF != 4 || $1 < 1 || $1 > 200 || $2 < 1 || $2 > 150 || $3 < 1 || $3 > 5 || $4 !~ /^[0-9]+$/ { bad = 1 }
                END { exit bad }' "$D/u.data"
    # no repeated (user, item) pair; every user present
    [ -z "$(cut -f1,2 "$D/u.data" | sort | uniq -d)" ]
    [ "$(cut -f1 "$D/u.data" | sort -u | wc -l)" -eq 200 ]
    [ "$(head -1 "$D/truth.tsv")" = $'item\tcluster\trank' ]
    [ "$(sed 1d "$D/truth.tsv" | wc -l)" -eq 150 ]
    sed 1d "$D/truth.tsv" | awk -F'\t' '$2 < 0 || $2 > 4 { bad = 1 } END { exit bad }'
    "$BIN/til-synth" -q --users 20 --columns 2 | awk -F'\t' 'NF != 2 { bad = 1 } END { exit bad }'
    "$BIN/til-synth" -q --users 20 --columns 3 | awk -F'\t' 'NF != 3 { bad = 1 } END { exit bad }'
}

@test "til-synth is byte-identical for a seed and differs for another" {
    "$BIN/til-synth" -q --users 300 --seed 9 -o "$D/a"
    "$BIN/til-synth" -q --users 300 --seed 9 > "$D/b"
    "$BIN/til-synth" -q --users 300 --seed 10 -o "$D/c"
    cmp "$D/a" "$D/b"
    ! cmp -s "$D/a" "$D/c"
}

@test "til-synth defaults: about 60k interactions from 1500 users" {
    run "$BIN/til-synth" -o "$D/d"
    [ "$status" -eq 0 ]
    n=$(wc -l < "$D/d")
    [ "$n" -gt 50000 ] && [ "$n" -lt 70000 ]
    [ "$(cut -f1 "$D/d" | sort -u | wc -l)" -eq 1500 ]
}

@test "til-synth output feeds a pipe (through the test fixture writer)" {
    "$BIN/til-synth" -q --users 50 --items 80 --clusters 4 |
        awk -F'\t' '{ print $1 - 1 "\t" $2 - 1 "\t" $3 "\t" $4 }' |
        perl "$ROOT/tests/bats/tsv2til.pl" 50 80 4 |
        "$BIN/til-split" -q --train - --valid "$D/va" --test "$D/te" | "$BIN/til-cat" --stats > "$D/st"
    grep -q $'^users\t50$' "$D/st"
}
