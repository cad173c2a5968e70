#!/usr/bin/env bash
# Rebuild the bundled model engine/weights/default.pt from scratch on the CPU (about 22 min on
# the 2-core VM; benchmarks/RESULTS.md, "The bundled model", has the runs):
#
# 1. a synthetic training set: seed 101, 144 subjects x 3 videos (~530 min of video), with two
#    things MediaPipe does on real pixels (scripts/default_model_synth.json): it drags the
#    forehead and face contour when the eyes close, and its brow landmarks jitter as pieces
#    (three times as much in dim light); without them the model calls real blinks and dim-light
#    jitter micro-expressions;
# 2. point-supervised training with hard windows around the points (and hard negatives), nested
#    selection of the epoch and thresholds on 20 % of those subjects; two training seeds side by
#    side, one thread each;
# 3. a real-pixel selection set (benchmarks/bench_realpixels.py --seed 2: warped-photo clips
#    through MediaPipe, never used for reporting) scores both;
# 4. scripts/pick_default_model.py keeps the seed with the best mean of the synthetic selection
#    F1 and the real-pixel selection F1, and records the choice in the checkpoint ("bundle").
#
# Why: among the point-supervised recipes of benchmarks/bench_accuracy.py, hard windows had the
# best mean selection F1 over three seeds; the tracker properties raised the real-pixel F1 of
# every seed tried; training seeds differ by up to 0.19 on real pixels, which the synthetic
# selection F1 does not predict, hence step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
# one BLAS / OpenMP thread everywhere: with more, float32 sums round differently (1e-5 px in the
# generated landmarks), and training turns that into a different model
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PFES_TORCH_THREADS=1
DATA=${DATA:-/tmp/pfes-default-train-144}
WORK=${WORK:-/tmp/pfes-default-work}
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"0 1"}
mkdir -p "$WORK"
if [ ! -f "$DATA/annotations.csv" ]; then
  "$PY" -m pfes synth --out "$DATA" --subjects 144 --videos-per-subject 3 --seed 101 \
    --config scripts/default_model_synth.json --force
fi
pids=()
cands=()
for s in $SEEDS; do
  cands+=("$WORK/seed$s.pt")
  echo "training seed $s (log: $WORK/seed$s.log)"
  "$PY" -m pfes train --data "$DATA" \
    --out "$WORK/seed$s.pt" --supervision hard --epochs 40 --seed "$s" >"$WORK/seed$s.log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "training ${cands[$i]} failed; last lines of its log:" >&2
    tail -5 "${cands[$i]%.pt}.log" >&2
    exit 1
  fi
  tail -1 "${cands[$i]%.pt}.log"
done
"$PY" benchmarks/bench_realpixels.py --work "$WORK/realpixels" --seed 2 --clips 8 --seconds 40 \
  --workers 2 --models "${cands[@]}" --json "$WORK/realpixels.json"
"$PY" scripts/pick_default_model.py --realpixels "$WORK/realpixels.json" \
  --out engine/weights/default.pt "${cands[@]}"
ls -l engine/weights/default.pt
