"""Time the synthetic generator: one 60 s video at 30 fps, in memory and written to disk.

Usage: ``python benchmarks/bench_synth.py [--repeats N]``. Prints median and p99 wall time
(milliseconds) over N different seeds, plus the first call (which builds the AU basis).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--length-s", type=float, default=60.0)
    args = ap.parse_args()
    from training.synth import generate_video, write_video_npz

    t0 = time.perf_counter()
    generate_video(0, length_s=args.length_s)
    first = time.perf_counter() - t0
    gen, wr = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            t0 = time.perf_counter()
            v = generate_video(i + 1, length_s=args.length_s)
            t1 = time.perf_counter()
            write_video_npz(Path(tmp) / "v.npz", v)
            t2 = time.perf_counter()
            gen.append(t1 - t0)
            wr.append(t2 - t1)
    gen_ms, tot_ms = np.array(gen) * 1e3, (np.array(gen) + np.array(wr)) * 1e3
    frames = int(round(args.length_s * 30))
    print(f"video {args.length_s:.0f} s x 30 fps = {frames} frames, {args.repeats} seeds")
    print(f"first call (incl. AU basis): {first * 1e3:.0f} ms")
    print(f"generate: median {np.median(gen_ms):.0f} ms, p99 {np.percentile(gen_ms, 99):.0f} ms")
    print(f"generate+write npz: median {np.median(tot_ms):.0f} ms, "
          f"p99 {np.percentile(tot_ms, 99):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
