# Interaction-file fixtures for the data-tool bats tests (split, noise), built
# by tsv2til.pl so they do not depend on til-preprocess.
FIXDIR="$(cd "$(dirname "${BATS_TEST_FILENAME}")" && pwd)"

# mk_inter FILE [COLS]: 40 users x 60 items, user u has u % 25 records
# (0..24), with ratings and timestamps (COLS 4, default), ratings only (3) or
# neither (2).
mk_inter() {
    perl -e 'for $u (0..39) { %s = (); for $k (1 .. $u % 25) { $i = ($u * 7 + $k * 13) % 60; next if $s{$i}++;
                 print "$u\t$i\t", 1 + ($u + $k) % 5, "\t", 880000000 + 3600 * (($k * 37 + $u) % 29), "\n" } }' |
        perl "$FIXDIR/tsv2til.pl" 40 60 "${2:-4}" > "$1"
}
