#!/usr/bin/env bash
# Runs every bench/*_bench.sh in turn (each is standalone and prints its own figures).
cd "$(dirname "$0")"
st=0
for b in ./*_bench.sh; do
    [ -x "$b" ] || continue
    "$b" || st=1
done
exit $st
