"""Per-frame face-mesh latency at 640x360 (legacy MediaPipe tracker, refine_landmarks=True).

Renders a warped-astronaut clip (expressions + small head motion), encodes and decodes it with
PyAV so the frames are real decoded video, then times ``FaceTracker.process`` per frame after a
warm-up. Reports p50 / p90 / p99 / mean in milliseconds, and decode time per frame.

Usage: ``python benchmarks/bench_facemesh.py [--frames 300] [--warmup 30] [--max-faces 1]
[--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from stream.source_file import FileSource
from stream.tracker import make_tracker
from training.warpclip import ClipSpec, HeadMotion, WarpEvent, make_clip


def _clip(path: Path, n: int) -> None:
    events = []
    for k, start in enumerate(range(20, n - 40, 60)):
        kind = ("smile", "brow_raise", "surprise", "eye_close")[k % 4]
        events.append(WarpEvent(kind, start, start + 10, start + 25, 0.7))
    spec = ClipSpec(n, events=tuple(events), head_motion=HeadMotion(6.0, 2.0, 0.02), seed=11)
    make_clip(spec, path, preset="veryfast")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300, help="timed frames")
    ap.add_argument("--warmup", type=int, default=30, help="untimed frames first")
    ap.add_argument("--max-faces", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    args = ap.parse_args(argv)
    n = args.frames + args.warmup
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        _clip(path, n)
        decode_ms = []
        images = []
        with FileSource(path) as src:
            it = iter(src)
            while True:
                t0 = time.perf_counter()
                try:
                    f = next(it)
                except StopIteration:
                    break
                decode_ms.append((time.perf_counter() - t0) * 1e3)
                images.append(f.image)
    lat_ms, found = [], 0
    with make_tracker("mediapipe", max_faces=args.max_faces) as tr:
        for i, img in enumerate(images):
            t0 = time.perf_counter()
            faces = tr.process(img, int(i * 1000 / 30))
            dt = (time.perf_counter() - t0) * 1e3
            if i >= args.warmup:
                lat_ms.append(dt)
                found += bool(faces)
    lat = np.array(lat_ms)
    res = {
        "what": "FaceTracker.process (legacy MediaPipe face mesh, refine_landmarks=True)",
        "frames": len(lat),
        "size": [640, 360],
        "max_faces": args.max_faces,
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p90_ms": round(float(np.percentile(lat, 90)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "mean_ms": round(float(lat.mean()), 2),
        "face_found": round(found / len(lat), 4),
        "decode_p50_ms": round(float(np.percentile(decode_ms[args.warmup :], 50)), 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
