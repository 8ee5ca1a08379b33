#!/usr/bin/env bash
# make bench: runs every bench/*_bench.sh in turn. Each prints its own measured
# figures and ratios; ones that need ../shared skip with a message.
set -u
cd "$(dirname "$0")/.."
rc=0
for b in bench/*_bench.sh; do
    [ -e "$b" ] || continue
    echo "== $b"
    bash "$b" || { echo "bench: $b failed (status $?)"; rc=1; }
done
exit $rc
