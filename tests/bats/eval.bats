#!/usr/bin/env bats
# til-eval, til-recommend, til-report (and the hidden helpers til-mkmodel,
# til-mkinter): command line, exit statuses, formats, pipes, id maps.
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
    # 4 users x 6 items; user 3 has no test item
    printf '0 0\n0 1\n1 2\n2 3\n2 4\n3 5\n' | til-mkinter --users 4 --items 6 -o "$D/tr.til"
    printf '0 2\n1 4\n2 0\n' | til-mkinter --users 4 --items 6 -o "$D/va.til"
    printf '0 3\n0 5\n1 0\n2 1\n' | til-mkinter --users 4 --items 6 -o "$D/te.til"
    til-mkmodel --users 4 --items 6 --dim 3 --int 2 --seed 5 --meta method=bpr --meta seed=7 -o "$D/m.til"
}

@test "til-eval, til-recommend, til-report --help print usage and exit 0" {
    for t in til-eval til-recommend til-report til-mkmodel til-mkinter; do
        run "$BIN/$t" --help
        [ "$status" -eq 0 ]
        [[ "$output" == *"usage: $t"* ]]
    done
}

@test "bad flags and missing arguments exit 2 with usage" {
    run til-eval --bogus
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: til-eval"* ]]
    run til-eval -m "$D/m.til" -r "$D/tr.til"
    [ "$status" -eq 2 ]
    run til-eval -m "$D/m.til" -r "$D/tr.til" -t "$D/te.til" -k 0
    [ "$status" -eq 2 ]
    run til-eval -m "$D/m.til" -r "$D/tr.til" -t "$D/te.til" --format xml
    [ "$status" -eq 2 ]
    run til-eval -m "$D/m.til" -r "$D/tr.til" -t "$D/te.til" --tag novalue
    [ "$status" -eq 2 ]
    run til-eval -m - -r - -t "$D/te.til"
    [ "$status" -eq 2 ]
    run til-recommend -m "$D/m.til"
    [ "$status" -eq 2 ]
    run til-recommend -m "$D/m.til" -r "$D/tr.til" -k x
    [ "$status" -eq 2 ]
    run til-report
    [ "$status" -eq 2 ]
    run til-report --format html x.tsv
    [ "$status" -eq 2 ]
}

@test "til-eval names both files when model and data do not match (exit 1)" {
    printf '0 0\n' | til-mkinter --users 4 --items 7 -o "$D/other.til"
    run til-eval -m "$D/m.til" -r "$D/tr.til" -t "$D/other.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"other.til"* ]]
    [[ "$output" == *"m.til"* ]]
    run til-eval -m "$D/m.til" -r "$D/other.til" -t "$D/te.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"other.til has 4 users x 7 items but model $D/m.til has 4 x 6"* ]]
}

@test "til-eval rejects a corrupt or foreign model with exit 1 naming it" {
    head -c 60 "$D/m.til" > "$D/cut.til"
    run til-eval -m "$D/cut.til" -r "$D/tr.til" -t "$D/te.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cut.til"* ]]
    run til-eval -m "$D/tr.til" -r "$D/tr.til" -t "$D/te.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"tr.til"* ]]
    run til-eval -m "$D/nope.til" -r "$D/tr.til" -t "$D/te.til"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nope.til"* ]]
}

@test "til-eval reads the model or a split from a pipe" {
    a=$(til-eval -m "$D/m.til" -r "$D/tr.til" -v "$D/va.til" -t "$D/te.til" -f tsv)
    b=$(cat "$D/m.til" | til-eval -m - -r "$D/tr.til" -v "$D/va.til" -t "$D/te.til" -f tsv)
    c=$(cat "$D/te.til" | til-eval -m "$D/m.til" -r "$D/tr.til" -v "$D/va.til" -t - -f tsv)
    [ "$a" = "$b" ]
    [ "$a" = "$c" ]
}

@test "til-eval tsv: 7 columns, labels from meta and --tag, numeric values; threads do not matter" {
    run til-eval -m "$D/m.til" -r "$D/tr.til" -t "$D/te.til" -k 1,3 -f tsv -T dataset=toy -T method=ours -j 1
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "dataset	backbone	method	seed	metric	k	value" ]
    [ "${#lines[@]}" -eq 10 ]   # header + 4 metrics x 2 k + mrr
    echo "$output" | awk -F'\t' 'NR>1 && (NF!=7 || $1!="toy" || $2!="mf" || $3!="ours" || $4!="7" || $7+0!=$7) {exit 1}'
    one="$output"
    run til-eval -m "$D/m.til" -r "$D/tr.til" -t "$D/te.til" -k 1,3 -f tsv -T dataset=toy -T method=ours -j 3
    [ "$output" = "$one" ]
}

@test "til-eval json parses and agrees with tsv" {
    run til-eval -m "$D/m.til" -r "$D/tr.til" -v "$D/va.til" -t "$D/te.til" -k 2 -f json -T run=a
    [ "$status" -eq 0 ]
    echo "$output" > "$D/r.json"
    rec=$(til-eval -m "$D/m.til" -r "$D/tr.til" -v "$D/va.til" -t "$D/te.til" -k 2 -f tsv | awk '$5=="recall"{print $7}')
    /usr/bin/python3 - "$D/r.json" "$rec" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["n_users"] == 3 and j["method"] == "bpr" and j["tags"] == {"run": "a"}, j
assert abs(j["recall"]["2"] - float(sys.argv[2])) < 1e-15
PY
}

@test "til-eval --per-user writes one row per evaluated user" {
    run til-eval -m "$D/m.til" -r "$D/tr.til" -t "$D/te.til" -k 1,3 -p "$D/pu.tsv"
    [ "$status" -eq 0 ]
    [ "$(head -1 "$D/pu.tsv")" = "user	recall@1	recall@3	ndcg@1	ndcg@3	mrr" ]
    [ "$(wc -l < "$D/pu.tsv")" -eq 4 ]
    [ "$(cut -f1 "$D/pu.tsv" | tail -n +2 | tr '\n' ' ')" = "0 1 2 " ]
}

@test "til-eval hand-checked metrics: one user, known ranking" {
    # user scores items by V: item i has score 5-i; train {0}; test {2, 4}
    printf '0 0\n' | til-mkinter --users 1 --items 5 -o "$D/t1.til"
    printf '0 2\n0 4\n' | til-mkinter --users 1 --items 5 -o "$D/e1.til"
    /usr/bin/python3 - "$D/h.til" <<'PY'
import struct, sys
def s(x): b = x.encode(); return struct.pack("<I", len(b)) + b
meta = [("kind", "model"), ("backbone", "mf"), ("n_users", "1"), ("n_items", "5"), ("dim", "1")]
out = b"TILMODEL" + struct.pack("<4I", 1, len(meta), 2, 0)
for k, v in meta: out += s(k) + s(v)
out += s("user") + struct.pack("<IQQ", 1, 1, 1) + struct.pack("<f", 1)
out += s("item") + struct.pack("<IQQ", 1, 5, 1) + struct.pack("<5f", 5, 4, 3, 2, 1)
out += b"TILEND01" + struct.pack("<I", 2)
open(sys.argv[1], "wb").write(out)
PY
    run til-eval -m "$D/h.til" -r "$D/t1.til" -t "$D/e1.til" -k 2,4 -f tsv
    [ "$status" -eq 0 ]
    echo "$output" | grep -q "	recall	2	0.5$"
    echo "$output" | grep -q "	recall	4	1$"
    echo "$output" | grep -q "	mrr	-	0.5$"
}

@test "til-recommend: top-k without train items, mapped ids, --users" {
    run til-recommend -m "$D/m.til" -r "$D/tr.til" -k 2
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "user	item	rank	score" ]
    [ "${#lines[@]}" -eq 9 ]
    # no recommended item is a train item of its user
    til-cat "$D/tr.til" | awk '{print $1":"$2}' | sort > "$D/trpairs"
    echo "$output" | awk 'NR>1{print $1":"$2}' | sort | comm -12 - "$D/trpairs" > "$D/overlap"
    [ ! -s "$D/overlap" ]
    printf '0\talice\n1\tbob\n2\tcarol\n3\tdan\n' > "$D/users.map"
    for i in 0 1 2 3 4 5; do printf '%d\tI%d\n' $i $((100 + i)); done > "$D/items.map"
    printf 'carol\n' > "$D/want"
    run til-recommend -m "$D/m.til" -r "$D/tr.til" -x "$D/va.til" -k 10 -U "$D/users.map" -I "$D/items.map" -u "$D/want"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 4 ]   # carol has 6 - 2 train - 1 valid = 3 candidates
    echo "$output" | awk 'NR>1 && ($1!="carol" || $2 !~ /^I10[0-5]$/ || $3!=NR-1) {exit 1}'
    echo "$output" | grep -qv "	I103	"
    head -2 "$D/users.map" > "$D/short.map"
    run til-recommend -m "$D/m.til" -r "$D/tr.til" -U "$D/short.map"
    [ "$status" -eq 1 ]
    [[ "$output" == *"short.map: user map has 2 ids but the model has 4 users"* ]]
    printf 'zed\n' > "$D/bad"
    run til-recommend -m "$D/m.til" -r "$D/tr.til" -U "$D/users.map" -u "$D/bad"
    [ "$status" -eq 1 ]
    [[ "$output" == *"'zed' is not in the user map"* ]]
}

@test "til-report: Table 1 layout, bold/underline, paired t-test star, tsv" {
    for s in 1 2 3; do
        printf 'dataset\tbackbone\tmethod\tseed\tmetric\tk\tvalue\n' > "$D/r$s.tsv"
        printf 'gowalla\tmf\tbpr\t%s\trecall\t20\t0.10%s\n' $s $s >> "$D/r$s.tsv"
        printf 'gowalla\tmf\twbpr\t%s\trecall\t20\t0.11%s\n' $s $s >> "$D/r$s.tsv"
        printf 'gowalla\tmf\ttil-mi\t%s\trecall\t20\t0.12%s%s\n' $s $s $s >> "$D/r$s.tsv"
    done
    run til-report "$D/r1.tsv" "$D/r2.tsv" "$D/r3.tsv"
    [ "$status" -eq 0 ]
    [[ "$output" == *"| dataset | backbone | metric | bpr | wbpr | til-mi |"* ]]
    [[ "$output" == *"| gowalla | mf | recall@20 | 0.1020 ± 0.0010 | <u>0.1120 ± 0.0010</u> | **0.1222 ± 0.0011*** |"* ]]
    [[ "$output" == *"(wbpr, 3 seeds)"* ]]
    run til-report -f tsv --ours bpr "$D/r1.tsv" "$D/r2.tsv" "$D/r3.tsv"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | awk -F'\t' '$5=="bpr"{print $10}')" != "-" ]
    run til-report "$D/r1.tsv" "$D/r1.tsv"
    [ "$status" -eq 1 ]
    [[ "$output" == *"duplicate result"* ]]
    printf 'a\tb\n' > "$D/bad.tsv"
    run til-report "$D/bad.tsv"
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.tsv:1:"* ]]
}
