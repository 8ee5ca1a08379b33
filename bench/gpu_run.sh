#!/usr/bin/env bash
# gpu_run.sh: the GPU session's whole check in one run (about 8 minutes at most):
#   1. make -j (prints the backends found), 2. make test-cuda (kernel tests + CPU/GPU parity),
#   3. if a prepared Gowalla split is present (data/gpu/{train,valid,test}.til, made by
#      `make gpu-data RAW_DIR=../shared/data`; or GPU_DATA=folder), MF-BPR epochs on CPU and
#      GPU (s/epoch of the batch loop, til-train's median) and one full evaluation on each.
# Everything goes to the results folder: $1, else $OUT, else out/gpu-run.
#   bench/gpu_run.sh /path/to/results
# Not part of make bench (the CI machines have no GPU). Not named *_bench.sh on purpose.
set -u
cd "$(dirname "$0")/.."
R=${1:-${OUT:-out/gpu-run}}
mkdir -p "$R" || exit 1
DATA=${GPU_DATA:-data/gpu}
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-$(nproc)}
log() { echo "$*" | tee -a "$R/summary.txt"; }
: > "$R/summary.txt"
log "== gpu_run $(date -u +%FT%TZ) on $(hostname), $THREADS threads"
nvidia-smi > "$R/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed (see nvidia-smi.txt)"
log "== build"
if ! timeout 240 make -j"$THREADS" > "$R/build.log" 2>&1; then log "build FAILED: tail of build.log:"; tail -20 "$R/build.log" | tee -a "$R/summary.txt"; exit 1; fi
grep 'backends' "$R/build.log" | tee -a "$R/summary.txt"
log "== make test-cuda"
timeout 150 make test-cuda > "$R/test-cuda.log" 2>&1
rc=$?
grep -E '^(ok|not ok|#   |1\.\.|test-cuda)' "$R/test-cuda.log" | tee -a "$R/summary.txt"
log "test-cuda exit status $rc"
if [ ! -s "$DATA/train.til" ] || [ ! -s "$DATA/valid.til" ] || [ ! -s "$DATA/test.til" ]; then
    log "== Gowalla: SKIP ($DATA/{train,valid,test}.til absent: make gpu-data RAW_DIR=../shared/data, carry data/gpu)"
    exit $rc
fi
TR=(--train "$DATA/train.til" --valid "$DATA/valid.til" --epochs "$EPOCHS" --eval-every 100000 --threads "$THREADS" --seed 2020)
for dev in cpu cuda; do
    log "== Gowalla MF-BPR, $EPOCHS epochs, --device $dev"
    timeout 200 bin/til-train "${TR[@]}" --device "$dev" -o "$R/gowalla-$dev.model" --log "$R/gowalla-$dev.train.tsv" \
        2> "$R/gowalla-$dev.train.err" || { log "til-train --device $dev FAILED:"; tail -5 "$R/gowalla-$dev.train.err" | tee -a "$R/summary.txt"; continue; }
    grep -E 'median|device' "$R/gowalla-$dev.train.err" | tee -a "$R/summary.txt"
done
for dev in cpu cuda; do
    [ -s "$R/gowalla-cpu.model" ] || break
    log "== Gowalla full evaluation of the CPU-trained model, --device $dev (test, train+valid masked)"
    /usr/bin/time -f '%e s wall, %M KiB peak' -o "$R/eval-$dev.time" timeout 120 bin/til-eval -m "$R/gowalla-cpu.model" \
        -r "$DATA/train.til" -v "$DATA/valid.til" -t "$DATA/test.til" -k 10,20,50 -j "$THREADS" --device "$dev" \
        --format json > "$R/eval-$dev.json" 2> "$R/eval-$dev.err" || { log "til-eval --device $dev FAILED:"; cat "$R/eval-$dev.err" | tee -a "$R/summary.txt"; continue; }
    cat "$R/eval-$dev.json" "$R/eval-$dev.time" | tee -a "$R/summary.txt"
done
exit $rc
