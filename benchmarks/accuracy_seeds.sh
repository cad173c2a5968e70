#!/usr/bin/env bash
# The seed-spread part of the accuracy table in one go on a many-core machine: the four main
# recipes (gim, gim-w2, hard, full) for training seeds 0, 1 and 2, twelve `pfes train` jobs side
# by side, one torch thread each, on the same data as bench_accuracy.py (train seed 101,
# 72 subjects x 3 videos; test seed 202, 24 subjects x 2 videos).
#
#   bash benchmarks/accuracy_seeds.sh OUT_DIR [DATA_DIR]
#   SERIAL=1 JOBS=2 bash benchmarks/accuracy_seeds.sh OUT_DIR   # a 2-core machine: one seed at a time
#
# Results: OUT_DIR/seed{0,1,2}/{variant}.eval.json (+ models and logs), and a table printed
# by benchmarks/seed_table.py. Data is generated into DATA_DIR (default /tmp/pfes-acc-data).
# Models already in OUT_DIR/seedN are reused. Time: on the 2-core VM, SERIAL=1 JOBS=2 took
# 37 min for seeds 1 and 2 (seed 0 reused); on a 16-core GPU host the twelve jobs side by side
# ran at 12-15 s an epoch, so about 10 min of training each (more than one 575 s call).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: accuracy_seeds.sh OUT_DIR [DATA_DIR]}
DATA=${2:-/tmp/pfes-acc-data}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$DATA"
[ -f "$DATA/train/annotations.csv" ] || "$PY" -m pfes synth --out "$DATA/train" --subjects 72 \
  --videos-per-subject 3 --seed 101 --force > "$OUT/synth-train.log" 2>&1 &
[ -f "$DATA/test/annotations.csv" ] || "$PY" -m pfes synth --out "$DATA/test" --subjects 24 \
  --videos-per-subject 2 --seed 202 --force > "$OUT/synth-test.log" 2>&1 &
wait
JOBS=${JOBS:-4}
pids=()
rc=0
for s in 0 1 2; do
  mkdir -p "$OUT/seed$s"
  ln -sfn "$DATA/train" "$OUT/seed$s/train"
  ln -sfn "$DATA/test" "$OUT/seed$s/test"
  "$PY" benchmarks/bench_accuracy.py --work "$OUT/seed$s" --out "$OUT/seed$s/results.json" \
    --seed "$s" --variants gim,gim-w2,hard,full --jobs "$JOBS" > "$OUT/seed$s/bench.out" 2>&1 &
  if [ -n "${SERIAL:-}" ]; then wait $! || rc=1; else pids+=($!); fi
done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
"$PY" benchmarks/seed_table.py "$OUT" || rc=1
exit $rc
