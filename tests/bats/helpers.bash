# Shared setup for the bats tests: paths to the built tools and the repo root.
ROOT="$(cd "$(dirname "${BATS_TEST_FILENAME}")/../.." && pwd)"
BIN="$ROOT/bin"
export PATH="$BIN:$PATH"
SHARED="$ROOT/../shared/data"

# skip_unless_shared FILE: skip the test when ../shared/data/FILE is absent.
skip_unless_shared() {
    [ -e "$SHARED/$1" ] || skip "../shared/data/$1 not present"
}
