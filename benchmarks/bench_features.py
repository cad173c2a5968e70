"""Benchmark the per-frame feature extractor (streaming push) and the batch path.

Usage:
    python benchmarks/bench_features.py [--frames 3600] [--repeats 5] [--fps 30] [--json PATH]

Input: a synthetic 478-point mesh (stream.feat_mesh) with landmark jitter, slow head motion and a
few no-face frames, so every code path runs. Reports per-frame push() latency (p50, p99, max in
milliseconds, after 100 warm-up frames) and the wall time of extract_features() on the whole
sequence (median over repeats).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from stream.feat_mesh import rigid_transform, synthetic_neutral_mesh
from stream.features import FeatureExtractor, extract_features


def make_sequence(n_frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks (T, 478, 3) float32 pixels, valid (T,) bool) with jitter, motion and gaps."""
    rng = np.random.default_rng(seed)
    mesh = synthetic_neutral_mesh(iod_px=70.0).astype(np.float64)
    yaw = np.cumsum(rng.normal(0.0, 0.3, n_frames))
    frames = np.stack([rigid_transform(mesh, yaw_deg=y, roll_deg=0.5 * y) for y in yaw])
    frames = frames + rng.normal(0.0, 0.4, frames.shape)
    valid = rng.uniform(size=n_frames) > 0.02
    frames[~valid] = np.nan
    return frames.astype(np.float32), valid


def bench(n_frames: int, repeats: int, fps: float) -> dict:
    frames, valid = make_sequence(n_frames)
    fe = FeatureExtractor(fps)
    for i in range(min(100, n_frames)):
        fe.push(frames[i] if valid[i] else None)
    fe.reset()
    times = np.empty(n_frames)
    for i in range(n_frames):
        lm = frames[i] if valid[i] else None
        t0 = time.perf_counter_ns()
        fe.push(lm)
        times[i] = time.perf_counter_ns() - t0
    times_ms = times[100:] / 1e6 if n_frames > 200 else times / 1e6
    batch = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        extract_features(frames, valid, fps)
        batch.append(time.perf_counter() - t0)
    return {
        "frames": n_frames,
        "fps": fps,
        "n_features": fe.n_features,
        "push_ms_p50": float(np.percentile(times_ms, 50)),
        "push_ms_p99": float(np.percentile(times_ms, 99)),
        "push_ms_max": float(times_ms.max()),
        "batch_s_median": float(np.median(batch)),
        "batch_frames_per_s": float(n_frames / np.median(batch)),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "numpy": np.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3600)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--json", help="also write the result as JSON here")
    args = ap.parse_args()
    res = bench(args.frames, args.repeats, args.fps)
    print(
        f"push(): p50 {res['push_ms_p50']:.3f} ms, p99 {res['push_ms_p99']:.3f} ms, "
        f"max {res['push_ms_max']:.3f} ms over {res['frames']} frames (F={res['n_features']})"
    )
    print(
        f"extract_features(): {res['batch_s_median'] * 1e3:.1f} ms median for {res['frames']} "
        f"frames ({res['batch_frames_per_s']:.0f} frames/s)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
