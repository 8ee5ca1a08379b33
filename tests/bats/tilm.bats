#!/usr/bin/env bats
# til-train --method til-ui/til-mi/til-mik: options, determinism, resume, logs, dumps, learning.
load helpers

setup() {
    D="$BATS_TEST_TMPDIR"
    "$BIN/til-mkdata" synth --users 200 --items 300 --per-user 20 --clusters 6 --seed 3 "$D/s"
    T=(--train "$D/s.train.til" --valid "$D/s.valid.til" --batch 400 --lr 0.01 --quiet --clusters 6
       --pretrain-epochs 2 --cluster-update 3 --eta-update 4)
}

@test "til-train TIL options: bad values exit 2, unknown method 1" {
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --method til-ui --meta-batch other
    [ "$status" -eq 2 ]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --method til-ui --tau 0
    [ "$status" -eq 2 ]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --method til-xx
    [ "$status" -eq 1 ]
    [[ "$output" == *"unknown method"* ]]
    run "$BIN/til-train" "${T[@]}" -o "$D/m" --method til-mi --clusters 301 --epochs 1
    [ "$status" -eq 1 ]
}

@test "til-mi: same seed gives identical model bytes for 1 and 2 threads; hyper-parameters in the model" {
    "$BIN/til-train" "${T[@]}" --method til-mi --epochs 4 --threads 2 -o "$D/a.til"
    "$BIN/til-train" "${T[@]}" --method til-mi --epochs 4 --threads 1 -o "$D/b.til"
    cmp "$D/a.til" "$D/b.til"
    "$BIN/til-train" "${T[@]}" --method til-ui --meta-batch fresh --weight-norm batch --epochs 3 --threads 2 -o "$D/c.til"
    "$BIN/til-train" "${T[@]}" --method til-ui --meta-batch fresh --weight-norm batch --epochs 3 --threads 1 -o "$D/d.til"
    cmp "$D/c.til" "$D/d.til"
    run "$BIN/til-cat" "$D/a.til"
    [[ "$output" == *"method = til-mi"* && "$output" == *"til_gamma = 0.1"* && "$output" == *"til_clusters = 6"* ]]
    [[ "$output" == *"til_meta_batch = same"* && "$output" == *"til_virtual_lr = 0.01"* ]]
}

@test "til-mi and til-mik: 5 epochs straight == 3 + resume (model bytes), checkpoint holds Lambda and Phi" {
    for m in til-mi til-mik; do
        "$BIN/til-train" "${T[@]}" --method $m --epochs 5 -o "$D/full-$m.til"
        "$BIN/til-train" "${T[@]}" --method $m --epochs 3 -o "$D/half.til" --checkpoint "$D/ck-$m"
        "$BIN/til-train" "${T[@]}" --method $m --epochs 5 -o "$D/res-$m.til" --resume "$D/ck-$m"
        cmp "$D/full-$m.til" "$D/res-$m.til"
    done
    run "$BIN/til-cat" "$D/ck-til-mi"
    [[ "$output" == *"tensor til_lambda "* && "$output" == *"tensor til_phi_m"* && "$output" == *"tensor til_target"* ]]
    run "$BIN/til-train" "${T[@]}" --method til-mi --gamma 0.5 --epochs 5 -o "$D/x.til" --resume "$D/ck-til-mi"
    [ "$status" -eq 1 ]
    [[ "$output" == *"checkpoint has til_gamma"* ]]
}

@test "til-ui: the generic jvp and double meta paths train like the MF float fast path" {
    "$BIN/til-train" "${T[@]}" --method til-ui --epochs 3 -o "$D/a.til" --log "$D/a.log"
    "$BIN/til-train" "${T[@]}" --method til-ui --epochs 3 -o "$D/g.til" --meta-path generic --log "$D/g.log"
    "$BIN/til-train" "${T[@]}" --method til-ui --epochs 3 -o "$D/x.til" --meta-path double --log "$D/x.log"
    # same maths in float instead of double: the losses agree to a few digits
    paste <(grep -v '^#' "$D/a.log" | cut -f2 | tail -n +2) <(grep -v '^#' "$D/g.log" | cut -f2 | tail -n +2) |
        awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-3 * $1) { print "differ: " $0; exit 1 } }'
    paste <(grep -v '^#' "$D/a.log" | cut -f2 | tail -n +2) <(grep -v '^#' "$D/x.log" | cut -f2 | tail -n +2) |
        awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-3 * $1) { print "differ: " $0; exit 1 } }'
}

@test "til-mi: log has weight statistics and the clustering loss; dumps write weights and clusters" {
    "$BIN/til-train" "${T[@]}" --method til-mi --epochs 4 -o "$D/m.til" --log "$D/l.tsv" \
        --dump-weights "$D/w.tsv" --dump-sample 50 --dump-clusters "$D/c.tsv"
    grep -q '^# til_alpha = 1' "$D/l.tsv"
    header=$(grep -v '^#' "$D/l.tsv" | head -1)
    [[ "$header" == *$'\tw_mean\tw_std\tw_p10\tw_p50\tw_p90\tcluster_loss' ]]
    [ "$(grep -vc '^#' "$D/l.tsv")" -eq 5 ]
    # epoch 1 (pretraining): no clustering loss; epoch 4: clustering loss present; weights in (0, 1)
    awk -F'\t' '!/^#/ && NR > 1 && $1 == 1 { exit !($15 == "NA" && $10 > 0 && $10 < 1 && $12 <= $13 && $13 <= $14) }' "$D/l.tsv"
    awk -F'\t' '!/^#/ && $1 == 4 { exit !($15 != "NA" && $15 > 0) }' "$D/l.tsv"
    [ "$(head -1 "$D/w.tsv")" = "$(printf 'user\tpos\tneg\tweight')" ]
    [ "$(wc -l < "$D/w.tsv")" -eq 51 ]
    [ "$(wc -l < "$D/c.tsv")" -eq 301 ]
    awk -F'\t' 'NR > 1 && ($2 < 0 || $2 >= 6) { exit 1 }' "$D/c.tsv"
    run "$BIN/til-train" "${T[@]}" --method til-ui --epochs 1 -o "$D/u.til" --dump-clusters "$D/c2.tsv"
    [ "$status" -eq 1 ]
}

@test "til-ui and til-mi learn on planted data: valid Recall@20 well above random" {
    for m in til-ui til-mi; do
        run "$BIN/til-train" "${T[@]}" --method $m --epochs 12 -o "$D/m.til" --test "$D/s.test.til"
        [ "$status" -eq 0 ]
        r=$("$BIN/til-cat" "$D/m.til" | awk -F' = ' '/valid_recall_20/ { print $2 }')
        # random ranking gives about 20/300 = 0.067
        awk -v r="$r" 'BEGIN { exit !(r > 0.25) }'
    done
}

@test "til-mi --meta-holdout: thread-count independent, resume bit-identical, in the model; bad values refused" {
    H=(--method til-mi --meta-holdout 0.2)
    "$BIN/til-train" "${T[@]}" "${H[@]}" --epochs 5 --threads 2 -o "$D/a.til"
    "$BIN/til-train" "${T[@]}" "${H[@]}" --epochs 5 --threads 1 -o "$D/b.til"
    cmp "$D/a.til" "$D/b.til"
    "$BIN/til-train" "${T[@]}" "${H[@]}" --epochs 3 -o "$D/h.til" --checkpoint "$D/ck"
    "$BIN/til-train" "${T[@]}" "${H[@]}" --epochs 5 -o "$D/r.til" --resume "$D/ck"
    cmp "$D/a.til" "$D/r.til"
    run "$BIN/til-cat" "$D/a.til"
    [[ "$output" == *"til_meta_holdout = 0.2"* ]]
    "$BIN/til-train" "${T[@]}" --method til-mi --epochs 5 -o "$D/c.til"
    ! cmp -s "$D/a.til" "$D/c.til"
    run "$BIN/til-train" "${T[@]}" --method til-mi --meta-holdout 0.3 --epochs 5 -o "$D/x.til" --resume "$D/ck"
    [ "$status" -eq 1 ]
    [[ "$output" == *"checkpoint has til_meta_holdout"* ]]
    run "$BIN/til-train" "${T[@]}" --method til-ui --meta-holdout 1 -o "$D/x.til"
    [ "$status" -eq 2 ]
    run "$BIN/til-train" "${T[@]}" --method til-ui --meta-holdout 0.2 --meta-batch fresh --epochs 1 -o "$D/x.til"
    [ "$status" -eq 1 ]
}

@test "TIL on graph and neural backbones: learns on planted data; same bytes for 1 and 2 threads" {
    for bm in lightgcn:til-ui lightgcn:til-mik mgccf:til-ui neumf:til-ui; do
        bb=${bm%%:*} m=${bm#*:} ep=6
        [ $bb = neumf ] && ep=12 # NeuMF's tower starts slower (6 epochs: about 0.27)
        "$BIN/til-train" "${T[@]}" --backbone $bb --method $m --epochs $ep --threads 2 -o "$D/$bb-$m.til"
        r=$("$BIN/til-cat" "$D/$bb-$m.til" | awk -F' = ' '/valid_recall_20/ { print $2 }')
        # random ranking gives about 20/300 = 0.067
        awk -v r="$r" -v w="$bb $m" 'BEGIN { if (r <= 0.25) print w ": recall " r; exit !(r > 0.25) }'
    done
    for bb in lightgcn mgccf neumf; do
        "$BIN/til-train" "${T[@]}" --backbone $bb --method til-ui --epochs 2 --threads 1 -o "$D/$bb-1.til"
        "$BIN/til-train" "${T[@]}" --backbone $bb --method til-ui --epochs 2 --threads 2 -o "$D/$bb-2.til"
        cmp "$D/$bb-1.til" "$D/$bb-2.til"
    done
    "$BIN/til-train" "${T[@]}" --backbone mgccf --method til-mi --gamma 0 --epochs 3 -o "$D/x.til"
}

@test "til-mi with the clustering loss (gamma > 0) on lightgcn, mgccf, neumf: runs, logs it, same bytes for 1 and 2 threads" {
    for bb in lightgcn mgccf neumf; do
        for th in 1 2; do
            "$BIN/til-train" "${T[@]}" --backbone $bb --method til-mi --gamma 0.1 --epochs 4 --threads $th \
                --log "$D/$bb-$th.log" -o "$D/$bb-$th.til"
        done
        cmp "$D/$bb-1.til" "$D/$bb-2.til"
        # cluster_loss (the last column): NA while pretraining (2 epochs), then a positive number
        awk -F'\t' -v bb=$bb '/^#/ || $1 == "epoch" { next }
            { n++; v[n] = $NF }
            END { ok = n == 4 && v[2] == "NA" && v[3] + 0 > 0 && v[4] + 0 > 0
                  if (!ok) print bb ": cluster_loss " v[1] " " v[2] " " v[3] " " v[4]; exit !ok }' "$D/$bb-1.log"
    done
}
