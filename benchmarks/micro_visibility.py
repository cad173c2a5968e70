"""How visible are the labelled micro-expressions, and which ones does a model find?

    python benchmarks/micro_visibility.py --data TEST_DIR --model A.pt [--model B.pt ...]

Visibility of an instance: the largest change, over its frames and the 34 displacement
features (region centroid minus neutral, IOD), from the mean of the 15 frames before its onset,
divided per feature by the 95th percentile of the same statistic (a 10-frame window against the
15 frames before it) on unlabelled stretches of the same video (sampled every 7 frames, at least
20 frames from any label). Those stretches hold the generator's unlabelled activity: blinks,
fidgets, gaze shifts, talking, head motion, tracker noise. A visibility of 1 means the
micro-expression moves the face no more than the face's 95th-percentile unlabelled movement.

Per visibility bin, for each model: instances matched (right class, IoU >= 0.5 with some detection) and
instances touched by any detection. Needs only numpy and torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BINS = ((0.0, 1.5), (1.5, 2.5), (2.5, float("inf")))


def quiet_noise(feats: np.ndarray, valid: np.ndarray, truth) -> np.ndarray | None:
    """Per displacement feature, the 95th percentile of unlabelled movement in one video."""
    x = feats[:, :34].astype(np.float64)
    busy = np.zeros(len(x), bool)
    for t in truth:
        busy[max(0, t.onset - 20):t.offset + 20] = True
    quiet = [np.abs(x[s:s + 10] - x[s - 15:s].mean(0)).max(0)
             for s in range(20, len(x) - 20, 7) if not busy[s] and valid[s - 15:s + 16].all()]
    if len(quiet) < 10:
        return None
    return np.maximum(np.percentile(np.array(quiet), 95, axis=0), 1e-9)


def visibility(feats: np.ndarray, noise: np.ndarray | None, onset: int, offset: int) -> float:
    """Peak change of the instance from the 15 frames before it, in units of ``noise``."""
    if noise is None:
        return float("nan")
    x = feats[:, :34].astype(np.float64)
    peak = np.abs(x[onset:offset + 1] - x[onset - 15:onset].mean(0)).max(0)
    return float((peak / noise).max())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--kind", default="micro", choices=("micro", "macro"))
    args = p.parse_args()

    import torch

    from engine.checkpoint import load_checkpoint
    from engine.detector import detect
    from training.dataset import load_dataset
    from training.evaluate import iou
    from training.infer import detector_config_of, predict_curves
    from training.prepare import prepare_videos

    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    vids, fps = prepare_videos(ds, ds.videos)
    models = [(m, load_checkpoint(m)) for m in args.model]
    rows: list[tuple[float, list[bool], list[bool]]] = []
    for v in vids:
        noise = quiet_noise(v.feats, v.valid, v.truth)
        inst = []
        for _, ck in models:
            a, ap = predict_curves(ck.net, v.feats, v.valid)
            inst.append(detect(a, ap, v.valid, detector_config_of(ck), fps))
        for t in v.truth:
            if t.kind != args.kind or t.onset < 15 or not v.valid[t.onset - 15:t.offset + 1].all():
                continue
            vis = visibility(v.feats, noise, t.onset, t.offset)
            matched = [any(i.kind == t.kind and iou(i.onset, i.offset, t.onset, t.offset) >= 0.5
                           for i in ins) for ins in inst]
            touched = [any(i.offset >= t.onset and i.onset <= t.offset for i in ins) for ins in inst]
            rows.append((vis, matched, touched))
    vis = np.array([r[0] for r in rows])
    print(f"{len(rows)} {args.kind} instances with 15 valid frames before onset; visibility "
          f"quantiles 10/25/50/75/90 %: " + " ".join(f"{q:.2f}" for q in
                                                   np.nanpercentile(vis, [10, 25, 50, 75, 90])))
    head = " | ".join(f"{Path(m).parent.name}/{Path(m).name} matched / touched" for m, _ in models)
    print(f"| visibility | n | {head} |")
    print("|---|---|" + "---|" * len(models))
    for lo, hi in BINS:
        sel = [r for r in rows if lo <= r[0] < hi]
        cells = " | ".join(f"{sum(r[1][k] for r in sel)} / {sum(r[2][k] for r in sel)}"
                           for k in range(len(models)))
        print(f"| {lo:g}-{hi:g} | {len(sel)} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
