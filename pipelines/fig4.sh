#!/bin/sh
# fig4.sh WEIGHTS ALL.til LOW.til: mean learned weight per (rating(u,i) in {4,5}, rating(u,j)
# in {1,2,3}) from a til-train --dump-weights TSV (user pos neg weight), the ratings of the
# kept positives (ALL.til) and of the sub-threshold pairs (LOW.til). Output TSV: a row per
# positive rating, a column per negative rating, values normalised to the largest cell x 100;
# a comment line gives the number of triplets per cell.
set -eu
w=$1 all=$2 low=$3
{ bin/til-cat "$all" | awk -F'\t' '{ print "P\t" $1 "\t" $2 "\t" $3 }'
  bin/til-cat "$low" | awk -F'\t' '{ print "L\t" $1 "\t" $2 "\t" $3 }'
  awk -F'\t' '$1 ~ /^[0-9]+$/ { print "W\t" $1 "\t" $2 "\t" $3 "\t" $4 }' "$w"; } |
awk -F'\t' '
    $1 == "P" { p[$2 "," $3] = $4; next }
    $1 == "L" { l[$2 "," $3] = $4; next }
    $1 == "W" { rp = p[$2 "," $3]; rn = l[$2 "," $4]
                if ((rp == 4 || rp == 5) && (rn >= 1 && rn <= 3)) { k = rp "," int(rn); s[k] += $5; n[k]++ } }
    END {
        m = 0
        for (k in s) { mean[k] = s[k] / n[k]; if (mean[k] > m) m = mean[k] }
        if (m == 0) { print "fig4.sh: no triplet has a positive rated 4-5 and a negative rated 1-3" > "/dev/stderr"; exit 1 }
        printf "# triplets per cell:"; for (a = 4; a <= 5; a++) for (b = 1; b <= 3; b++) printf " (%d,%d)=%d", a, b, n[a "," b]; printf "\n"
        printf "positive\trating(u,j)=1\trating(u,j)=2\trating(u,j)=3\n"
        for (a = 4; a <= 5; a++) {
            printf "rating(u,i)=%d", a
            for (b = 1; b <= 3; b++) { k = a "," b; if (k in mean) printf "\t%.2f", 100 * mean[k] / m; else printf "\tNaN" }
            printf "\n"
        }
    }'
