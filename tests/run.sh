#!/usr/bin/env bash
# Runs the C unit tests (sanitizer build) and/or the bats tests, echoes their
# TAP output, and ends with the totals line "N passed, N failed".
# Usage: tests/run.sh [all|unit|bats]
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
pass=0 fail=0 skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { # reads TAP on stdin, echoes it, updates counters
    local line
    while IFS= read -r line; do
        printf '%s\n' "$line"
        case "$line" in
            "ok "*"# skip"*|"ok "*"# SKIP"*) skip=$((skip + 1)) ;;
            "ok "*) pass=$((pass + 1)) ;;
            "not ok "*) fail=$((fail + 1)) ;;
        esac
    done
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    for t in build/asan/tests/test_*; do
        [ -x "$t" ] || continue
        echo "# unit: $t"
        "$t" >"$log" 2>&1
        rc=$?
        count <"$log"
        if [ $rc -ne 0 ] && ! grep -q '^not ok' "$log"; then
            echo "not ok - $t exited with status $rc (crash or sanitizer report above)"
            fail=$((fail + 1))
        fi
    done
fi

if [ "$what" = all ] || [ "$what" = bats ]; then
    if command -v bats >/dev/null 2>&1; then
        echo "# bats: tests/bats"
        bats --tap tests/bats >"$log" 2>&1
        count <"$log"
    else
        echo "not ok - bats is not installed (apt-get install bats)"
        fail=$((fail + 1))
    fi
fi

echo "${pass} passed, ${fail} failed, ${skip} skipped"
[ "$fail" -eq 0 ]
