#!/usr/bin/env bash
# make bench: runs every bench/*_bench.sh in turn (each prints its figures and ratios).
set -u
cd "$(dirname "$0")/.."
rc=0
for b in bench/*_bench.sh; do
    [ -x "$b" ] || continue
    "$b" || { echo "bench: $b failed"; rc=1; }
done
exit $rc
