"""Measure how MediaPipe's face mesh drags the rest of the face when the eyes close.

On real pixels, closing the eyes moves more of the tracked mesh than the eyelids: MediaPipe
pulls the upper forehead and the face contour beside the ears down by about 0.04 IOD and the
nose tip up, although those pixels do not move. The synthetic generator can add this tracker
effect to its blinks (``SynthConfig.tracker_blink_drag``) so that models learn what a blink
looks like through the real tracker.

The measurement: a clip of ``skimage.data.astronaut()`` (training/warpclip.py) in which only
the upper eyelids close (eye-closure warp, lid closure 0.8 at intensity 1; brows and lower
lids pinned; small head motion and sensor noise), blinks of 4-12 frames every 1-2 s; MediaPipe
tracks every frame; per blink, the landmarks at its apex minus their mean over the three
frames before it, in a face frame (eye line along +x, IOD 1); the median over blinks, divided
by the warp's lid closure (0.8) to give the drag per unit of eye closure. The eyelid and iris
points themselves are set to 0 (the generator's AU43 field moves those). Written to
``training/assets/blink_drag.npy``: float32 (478, 3), x to image-right, y down, z as
MediaPipe's (on the x scale).

The clip uses seed 7 and 40 s; benchmarks/bench_realpixels.py renders its own clips from other
seeds, so the benchmark does not score the clip this was measured on (it does score the same
face and the same kind of warp).

Usage: ``python scripts/measure_blink_drag.py [--out PATH] [--seed 7] [--seconds 40]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LID_CLOSE = 0.8  # the eye-closure warp's lid closure at intensity 1 (warpclip_regions.py)


def blink_events(rng: np.random.Generator, n_frames: int, fps: float) -> list:
    from training.warpclip import WarpEvent

    events, t = [], int(fps)
    while True:
        dur = int(rng.integers(4, 13))
        if t + dur + 3 >= n_frames:
            return events
        apex = t + (dur - 1) // 2
        events.append(WarpEvent("eye_close", t, apex, t + dur - 1, 1.0, "micro"))
        t += dur + int(rng.integers(int(1.0 * fps), int(2.0 * fps)))


def measure(seed: int, seconds: float) -> tuple[np.ndarray, int]:
    from stream.tracker import make_tracker
    from training.synth import _CH, _basis_matrix
    from training.warpclip import ClipSpec, HeadMotion, render_frames
    from training.warpclip_regions import IRIS, L_LOWER_LID, L_UPPER_LID, R_LOWER_LID, R_UPPER_LID

    fps = 30.0
    n = int(round(seconds * fps))
    rng = np.random.default_rng(seed)
    events = blink_events(rng, n, fps)
    spec = ClipSpec(n, fps=fps, size=(640, 360), events=tuple(events),
                    head_motion=HeadMotion(3.0, 1.0, 0.01), noise_std=2.0, seed=seed)
    lms = []
    with make_tracker("mediapipe") as tracker:
        for i, frame in enumerate(render_frames(spec)):
            faces = tracker.process(frame, int(i * 1000 / fps))
            lms.append(faces[0].landmarks if faces else np.full((478, 3), np.nan, np.float32))
    lm = np.stack(lms).astype(np.float64)
    drags = []
    for e in events:
        pre = lm[e.onset - 3:e.onset].mean(axis=0)
        if not (np.isfinite(pre).all() and np.isfinite(lm[e.apex]).all()):
            continue
        ex = pre[473, :2] - pre[468, :2]
        iod = float(np.linalg.norm(ex))
        c, s = ex / iod
        rot = np.array([[c, s], [-s, c]])  # into the face frame: eye line along +x
        d = lm[e.apex] - pre
        d[:, :2] = d[:, :2] @ rot.T
        drags.append(d / iod)
    drag = np.median(np.array(drags), axis=0) / LID_CLOSE
    # the generator's own eye-closure field covers these points
    basis = _basis_matrix().reshape(-1, 478, 3)
    moved = (np.abs(basis[_CH["AU43_r"]]).max(axis=1) > 1e-4) | (
        np.abs(basis[_CH["AU43_l"]]).max(axis=1) > 1e-4)
    moved[list(IRIS + R_UPPER_LID + L_UPPER_LID + R_LOWER_LID + L_LOWER_LID)] = True
    drag[moved] = 0.0
    return drag.astype(np.float32), len(drags)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "training" / "assets" / "blink_drag.npy")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=40.0)
    args = ap.parse_args(argv)
    drag, n = measure(args.seed, args.seconds)
    np.save(args.out, drag)
    mag = np.linalg.norm(drag[:, :2], axis=1)
    top = np.argsort(-mag)[:8]
    print(f"wrote {args.out} from {n} blinks; largest drags (IOD per unit closure, x, y):")
    for i in top:
        print(f"  landmark {i}: {drag[i, 0]:+.3f} {drag[i, 1]:+.3f}")
    for name, idx in (("forehead 10", 10), ("nose tip 1", 1), ("chin 152", 152)):
        print(f"  {name}: {drag[idx, 0]:+.3f} {drag[idx, 1]:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
