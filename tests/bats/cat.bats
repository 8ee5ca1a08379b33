#!/usr/bin/env bats
# til-cat: command line, exit statuses, errors naming the file.
load helpers

@test "til-cat --help prints usage and exits 0" {
    run "$BIN/til-cat" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"usage: til-cat"* ]]
}

@test "til-cat rejects an unknown flag with usage and status 2" {
    run "$BIN/til-cat" --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-cat"* ]]
}

@test "til-cat names the file of a missing or foreign input and exits 1" {
    run "$BIN/til-cat" "$BATS_TEST_TMPDIR/nope.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nope.til"* ]]
    echo "hello" > "$BATS_TEST_TMPDIR/x.txt"
    run "$BIN/til-cat" "$BATS_TEST_TMPDIR/x.txt"
    [ "$status" -eq 1 ]
    [[ "$output" == *"x.txt: not a til binary file"* ]]
    run "$BIN/til-cat" < /dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"stdin"* ]]
}
