"""Build the bundled demo clip ``stream/assets/demo.mp4`` and its ground truth ``demo.json``.

A 20 s, 640x360, 30 fps warped-photo clip of ``skimage.data.astronaut()`` (see
``training/warpclip.py``) with small smooth head motion throughout and, separated by neutral
stretches:

- a smile (macro, 1.7 s), a lip-corner micro expression (10 frames, 50 %),
- a surprise (brow raise + jaw drop, macro, 1.0 s), a brow-lower micro expression (12 frames,
  60 %), and a brow raise (macro, 1.4 s).

Deterministic: the same code and library versions give the same frames (x264 output can differ
between x264 builds, the frames do not). ``pfes run`` with no SOURCE plays this clip.

Usage: ``python scripts/make_demo_clip.py [--out-dir stream/assets]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from training.warpclip import ClipSpec, HeadMotion, WarpEvent, make_clip

FPS = 30.0
N_FRAMES = 600  # 20 s

DEMO_EVENTS = (
    WarpEvent("smile", onset=75, apex=105, offset=125, intensity=0.8, type="macro"),
    WarpEvent("smile", onset=200, apex=205, offset=209, intensity=0.5, type="micro"),
    WarpEvent("surprise", onset=290, apex=302, offset=319, intensity=0.9, type="macro"),
    WarpEvent("brow_lower", onset=400, apex=405, offset=411, intensity=0.6, type="micro"),
    WarpEvent("brow_raise", onset=480, apex=500, offset=521, intensity=0.8, type="macro"),
)

DEMO_SPEC = ClipSpec(
    n_frames=N_FRAMES,
    fps=FPS,
    size=(640, 360),
    events=DEMO_EVENTS,
    head_motion=HeadMotion(translate_px=5.0, rotate_deg=1.5, scale=0.015),
    noise_std=0.0,
    seed=2026,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parents[1] / "stream" / "assets"
    )
    ap.add_argument("--crf", type=int, default=23)
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    mp4, js = args.out_dir / "demo.mp4", args.out_dir / "demo.json"
    t0 = time.monotonic()
    gt = make_clip(DEMO_SPEC, mp4, js, crf=args.crf, preset="slow")
    dt = time.monotonic() - t0
    size_mb = mp4.stat().st_size / 1e6
    print(
        f"wrote {mp4} ({size_mb:.2f} MB, {gt['frames']} frames, {len(gt['events'])} events) "
        f"and {js} in {dt:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
