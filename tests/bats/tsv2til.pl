#!/usr/bin/env perl
# tsv2til.pl N_USERS N_ITEMS COLS < records.tsv > out.til
# Test fixture writer: builds an (uncompressed) interaction file from TSV lines
# "user item [rating] [timestamp]" with dense 0-based ids, independently of the
# C library, so the bats tests do not depend on til-preprocess.
# COLS: 2 = user item, 3 = + rating, 4 = + rating timestamp. Records are sorted
# by (user, item) here; duplicates are written as given (to make bad files).
use strict;
use warnings;
my ($nu, $ni, $cols) = @ARGV;
die "usage: tsv2til.pl N_USERS N_ITEMS COLS\n" unless defined $cols;
my @rec;
while (<STDIN>) {
    chomp;
    next if /^\s*$/;
    my @f = split /\s+/;
    push @rec, [@f];
}
@rec = sort { $a->[0] <=> $b->[0] or $a->[1] <=> $b->[1] } @rec;
my @cnt = (0) x $nu;
$cnt[$_->[0]]++ for @rec;
my $n = scalar @rec;
my $flags = ($cols >= 3 ? 1 : 0) | ($cols >= 4 ? 2 : 0);
binmode STDOUT;
print pack("a8 V V Q< Q< Q< Q<", "TILINTER", 1, $flags, $nu, $ni, $n, 0);
print pack("V*", @cnt);
print pack("V*", map { $_->[1] } @rec);
print pack("f<*", map { $_->[2] } @rec) if $cols >= 3;
print pack("q<*", map { $_->[3] } @rec) if $cols >= 4;
print pack("a8 Q<", "TILEND01", $n);
