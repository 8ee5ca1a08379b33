#!/bin/sh
# checksum.sh SUMS FILE NAME: verifies FILE against the sha256 pinned for NAME in SUMS
# (lines "sha256  name"). Exit 1 on a mismatch; a name SUMS does not pin is reported with
# its checksum (trust on first use) so that it can be pinned.
set -eu
sums=$1 file=$2 name=$3
got=$(sha256sum "$file" | cut -d' ' -f1)
want=$(awk -v n="$name" '$2 == n { print $1 }' "$sums" 2>/dev/null | head -n 1)
if [ -z "$want" ]; then
    echo "checksum.sh: $name is not pinned in $sums; its sha256 is $got" >&2
elif [ "$got" != "$want" ]; then
    echo "checksum.sh: $name: sha256 $got does not match the pinned $want" >&2
    exit 1
fi
