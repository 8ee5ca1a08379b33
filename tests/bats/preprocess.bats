#!/usr/bin/env bats
# til-preprocess: command line, exit statuses, pipes, determinism, gzip input,
# and the counts on the shared datasets (skipped when ../shared/data is absent).
load helpers
bats_require_minimum_version 1.5.0

ml_sample() { # ml100k-style: users 1..12 rate items 1..12 (every pair, ratings 1..5)
    local u i
    for u in $(seq 1 12); do
        for i in $(seq 1 12); do
            printf '%d\t%d\t%d\t%d\n' "$u" "$i" $(( (u + i) % 5 + 1 )) $(( 880000000 + u * 100 + i ))
        done
    done
}

@test "til-preprocess --help prints usage on stdout and exits 0" {
    run --separate-stderr "$BIN/til-preprocess" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"usage: til-preprocess"* ]]
    [[ "$output" == *"gowalla-snap"* ]]
}

@test "til-preprocess rejects bad flags with usage and status 2" {
    run "$BIN/til-preprocess" --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-preprocess"* ]]
    run "$BIN/til-preprocess" --format nope
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown format 'nope'"* ]]
    run "$BIN/til-preprocess" /dev/null
    [ "$status" -eq 2 ]
    [[ "$output" == *"--format is required"* ]]
    run "$BIN/til-preprocess" --format ml100k --kcore -1
    [ "$status" -eq 2 ]
    run "$BIN/til-preprocess" --format ml100k --min-rating abc
    [ "$status" -eq 2 ]
    run "$BIN/til-preprocess" --format lastfm --min-rating 3
    [ "$status" -eq 2 ]
    [[ "$output" == *"format lastfm has no ratings"* ]]
    run "$BIN/til-preprocess" --format generic --user-col 1
    [ "$status" -eq 2 ]
    [[ "$output" == *"--item-col"* ]]
    run "$BIN/til-preprocess" --format ml100k --sep ab
    [ "$status" -eq 2 ]
    run "$BIN/til-preprocess" --format ml100k a b
    [ "$status" -eq 2 ]
}

@test "til-preprocess --strict names file:line of a malformed line and exits 1" {
    printf '1\t2\t5\t100\n1\t3\tfive\t100\n' > "$BATS_TEST_TMPDIR/bad.data"
    run "$BIN/til-preprocess" --format ml100k --kcore 0 --strict -o "$BATS_TEST_TMPDIR/o.til" "$BATS_TEST_TMPDIR/bad.data"
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.data:2: rating 'five' is not a number"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/o.til" ]
    # lenient by default: skipped, counted and shown with its line number
    run --separate-stderr "$BIN/til-preprocess" --format ml100k --kcore 0 -o "$BATS_TEST_TMPDIR/o.til" "$BATS_TEST_TMPDIR/bad.data"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"1 malformed"* ]]
    [[ "$stderr" == *"skipped "*"bad.data:2: rating"* ]]
    run "$BIN/til-preprocess" --format ml100k "$BATS_TEST_TMPDIR/missing.data"
    [ "$status" -eq 1 ]
    [[ "$output" == *"missing.data"* ]]
}

@test "til-preprocess works in a pipe: raw | til-preprocess - -o - | til-cat --stats" {
    ml_sample > "$BATS_TEST_TMPDIR/u.data"
    run bash -c "cat '$BATS_TEST_TMPDIR/u.data' | '$BIN/til-preprocess' --format ml100k --kcore 2 -q - -o - | '$BIN/til-cat' --stats"
    [ "$status" -eq 0 ]
    # ratings (u+i)%5+1 >= 4: (u+i)%5 in {3,4}: 59 of 144 pairs, every user and item keeps >= 2
    [[ "$output" == *"users	12"* ]]
    [[ "$output" == *"items	12"* ]]
    [[ "$output" == *"interactions	59"* ]]
    [[ "$output" == *"columns	user item rating timestamp"* ]]
}

@test "til-preprocess is deterministic and independent of line order; gzip input gives the same bytes" {
    ml_sample > "$BATS_TEST_TMPDIR/u.data"
    cd "$BATS_TEST_TMPDIR"
    "$BIN/til-preprocess" -q --format ml100k --kcore 3 u.data -o a.til --user-map a.users --item-map a.items
    "$BIN/til-preprocess" -q --format ml100k --kcore 3 u.data -o b.til
    cmp a.til b.til
    tac u.data | gzip > r.data.gz
    "$BIN/til-preprocess" -q --format ml100k --kcore 3 r.data.gz -o c.til --user-map c.users --item-map c.items
    cmp a.til c.til
    cmp a.users c.users
    cmp a.items c.items
    # id maps: dense_id TAB raw id, numeric order of the raw ids
    [ "$(head -n 3 a.users)" = "$(printf '0\t1\n1\t2\n2\t3')" ]
    [ "$(wc -l < a.items)" -eq 12 ]
}

@test "til-preprocess --low-ratings writes the below-threshold pairs of the survivors" {
    ml_sample > "$BATS_TEST_TMPDIR/u.data"
    cd "$BATS_TEST_TMPDIR"
    run --separate-stderr "$BIN/til-preprocess" --format ml100k --kcore 0 u.data -o pos.til --low-ratings low.til
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"low ratings: 85 pairs"* ]]
    [ "$("$BIN/til-cat" low.til | wc -l)" -eq 85 ]
    [ "$("$BIN/til-cat" --stats low.til | awk '$1 == "users" { print $2 }')" = 12 ]
    # no pair is both positive and low
    [ -z "$( ("$BIN/til-cat" pos.til; "$BIN/til-cat" low.til) | cut -f1,2 | sort | uniq -d)" ]
    run "$BIN/til-preprocess" --format adj --low-ratings low.til u.data
    [ "$status" -eq 2 ]
}

@test "til-preprocess generic format with separator, header and columns" {
    printf 'item;user;score;when\nI1;U1;5;2010-10-19T23:55:27Z\nI2;U1;2;17\nI2;U2;4;18\n' > "$BATS_TEST_TMPDIR/g.csv"
    run bash -c "'$BIN/til-preprocess' -q --format generic --sep ';' --header --user-col 2 --item-col 1 --rating-col 3 --time-col 4 --kcore 0 '$BATS_TEST_TMPDIR/g.csv' | '$BIN/til-cat'"
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '0\t0\t5\t1287532527\n1\t1\t4\t18')" ]
}

@test "til-preprocess on shared Gowalla (adj): 29858/40981/1027370 as shipped, 10-core 29857/40979/1027343" {
    skip_unless_shared gowalla/gowalla.adj.txt.gz
    run bash -c "'$BIN/til-preprocess' -q --format adj --kcore 0 '$SHARED/gowalla/gowalla.adj.txt.gz' | '$BIN/til-cat' --stats"
    [ "$status" -eq 0 ]
    [[ "$output" == *"users	29858"* ]]
    [[ "$output" == *"items	40981"* ]]
    [[ "$output" == *"interactions	1027370"* ]]
    run --separate-stderr "$BIN/til-preprocess" --format adj "$SHARED/gowalla/gowalla.adj.txt.gz" -o "$BATS_TEST_TMPDIR/g.til"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"final"*" 29857 "*" 40979 "*" 1027343"* ]]
}

@test "til-preprocess on shared MovieLens 100K, latest-small and Last.fm 2K" {
    skip_unless_shared ml-100k/u.data
    skip_unless_shared ml-latest-small/ratings.csv
    skip_unless_shared lastfm-2k/user_artists.txt
    run --separate-stderr "$BIN/til-preprocess" --format ml100k "$SHARED/ml-100k/u.data" -o "$BATS_TEST_TMPDIR/a.til"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"rating>=4 "*" 942 "*" 1447 "*" 55375"* ]]
    [[ "$stderr" == *"final "*" 887 "*" 822 "*" 52764"* ]]
    run --separate-stderr "$BIN/til-preprocess" --format mlcsv "$SHARED/ml-latest-small/ratings.csv" -o "$BATS_TEST_TMPDIR/b.til"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"1 header"* ]]
    [[ "$stderr" == *"final "*" 555 "*" 1176 "*" 35771"* ]]
    run --separate-stderr "$BIN/til-preprocess" --format lastfm "$SHARED/lastfm-2k/user_artists.txt" -o "$BATS_TEST_TMPDIR/c.til"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"parsed "*" 1892 "*" 17632 "*" 92834"* ]]
    [[ "$stderr" == *"final "*" 1797 "*" 1507 "*" 62376"* ]]
}
