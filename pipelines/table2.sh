#!/bin/sh
# table2.sh DATASET=ALL.til...: the paper's Table 2 (dataset statistics) as markdown.
set -eu
printf '| dataset | users | items | interactions | density |\n|---|---:|---:|---:|---:|\n'
for spec in "$@"; do
    name=${spec%%=*} f=${spec#*=}
    bin/til-cat --stats "$f" | awk -F'\t' -v n="$name" '
        { v[$1] = $2 } END { printf "| %s | %d | %d | %d | %.5f%% |\n", n, v["users"], v["items"], v["interactions"], 100 * v["density"] }'
done
