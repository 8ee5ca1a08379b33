#!/usr/bin/env bash
# Parse speed of til-preprocess on an Amazon-style ratings CSV.
#
# Usage: bench/parse_speed.sh [SIZE_MIB] [--keep]
# Generates SIZE_MIB (default 1024, i.e. 1 GiB) of "user,item,rating,timestamp"
# lines with Amazon-like ids (A + 13 digits users, about 20 lines each; B + 9
# digits items, about 50 lines each on average with a skewed popularity;
# ratings 1..5, 75% of them >= 4; for 1 GiB: 26M lines, 1.3M users, 0.5M items) into
# ${TMPDIR:-/tmp}, runs til-preprocess on it plain and gzip-compressed, and
# prints MB/s (10^6 bytes of uncompressed text per second): the parse phase as
# the tool measures it (wall clock and CPU time: on a shared machine the CPU
# figure is the steadier one), and end to end (parse, dedupe, 10-core, write).
# The data is removed afterwards unless --keep is given. Timings on a shared
# machine are noisy: run it twice.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
keep=${2:-}
[[ "$mib" =~ ^[0-9]+$ ]] && [ "$mib" -gt 0 ] || { echo "usage: $0 [SIZE_MIB] [--keep]" >&2; exit 2; }
bin=bin/til-preprocess
[ -x "$bin" ] || { echo "$0: $bin not built (run make)" >&2; exit 1; }
dir=${TMPDIR:-/tmp}/til-parse-speed
mkdir -p "$dir"
csv=$dir/ratings_v2_${mib}m.csv
[ "$keep" = --keep ] || trap 'rm -f "$csv" "$csv.gz" "$dir/out.til"' EXIT

if [ ! -s "$csv" ]; then
    echo "# generating $mib MiB of Amazon-style CSV into $csv"
    t0=$(date +%s.%N)
    awk -v bytes=$((mib * 1048576)) 'BEGIN {
        srand(12345); n = 0
        nu = int(bytes / 41 / 20) + 1; ni = int(bytes / 41 / 50) + 1 # ~41 bytes a line
        while (n < bytes) {
            u = int(rand() * nu); x = rand(); i = int(ni * x * x)
            r = rand(); rt = r < 0.09 ? 1 : r < 0.15 ? 2 : r < 0.25 ? 3 : r < 0.45 ? 4 : 5
            line = sprintf("A%013d,B%09d,%d.0,%d", u, i, rt, 900000000 + int(rand() * 500000000))
            print line; n += length(line) + 1
        }
    }' > "$csv"
    t1=$(date +%s.%N)
    echo "# generated in $(echo "$t1 - $t0" | bc) s"
fi
bytes=$(stat -c %s "$csv")

run() { # run LABEL FILE: prints parse and end-to-end MB/s
    local label=$1 file=$2 log t0 t1
    log=$(mktemp)
    t0=$(date +%s.%N)
    "$bin" --format amazon "$file" -o "$dir/out.til" 2>"$log"
    t1=$(date +%s.%N)
    local parse
    parse=$(sed -n 's/.* in \([0-9.]*\) s (\([0-9.]*\) MB\/s; \([0-9.]*\) s CPU, \([0-9.]*\) MB\/s).*/\1 \2 \3 \4/p' "$log" | head -n 1)
    echo "$label: $(grep -E '^final' "$log" | awk '{print $2" users, "$3" items, "$4" interactions"}')"
    awk -v b="$bytes" -v p="$parse" -v w="$(echo "$t1 - $t0" | bc)" 'BEGIN {
        split(p, a, " ")
        printf "  parse      %6.2f s wall %7.1f MB/s   %6.2f s CPU %7.1f MB/s\n", a[1], a[2], a[3], a[4]
        printf "  end to end %6.2f s wall %7.1f MB/s\n", w, b / 1e6 / w }'
    grep -E 'peak memory' "$log" | sed 's/^/  /' || true
    rm -f "$log"
}

echo "# input: $bytes bytes, $(wc -l < "$csv") lines; $(nproc) cores (shared: figures are noisy)"
run "plain" "$csv"
if [ ! -s "$csv.gz" ]; then
    echo "# compressing (gzip -1)"
    gzip -1 -c "$csv" > "$csv.gz"
fi
echo "# gzip: $(stat -c %s "$csv.gz") bytes compressed"
run "gzip " "$csv.gz"
