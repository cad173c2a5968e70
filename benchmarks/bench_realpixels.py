"""Spotting accuracy on real pixels: warped-photo clips, converted like a licensed release.

The synthetic benchmark (bench_accuracy.py) scores models on generated landmark tracks. This
one goes through pixels and the real tracker: it renders clips of a real face photograph
(``skimage.data.astronaut()``, warped over time by ``training/warpclip.py``) with known
macro- and micro-expressions, unlabelled blinks, small head motion and sensor noise; writes
them as a look-alike CAS(ME)^2 release (``rawpic/s<N>/<N>_<code>clip/img<k>.jpg`` + the label
workbook); converts that with ``pfes convert casme2`` (MediaPipe face mesh on every JPEG); and
scores each model with ``pfes eval``. It therefore measures the synthetic-to-real gap of the
landmarks (MediaPipe's own noise, smoothing and bias on real pixels), not face variety: every
clip shows the same face, and the synthetic generator's neutral mesh was measured on that same
photo.

Per clip (default 40 s at 30 fps, 640x360): events one after another with 0.7-2 s of neutral
between them; each is a macro-expression (0.5-4 s, intensity 0.7-1, any of the warp kinds
except eye closure), a micro-expression (6-15 frames, intensity 0.3-0.6, one region: smile,
brow raise or brow lower) or an unlabelled blink (eye closure, 4-12 frames), in proportions
0.5 / 0.25 / 0.25.

Usage::

    python benchmarks/bench_realpixels.py --work /tmp/rp [--clips 8] [--seconds 40] [--seed 0]
        [--camera normal|small|dim|mirror] [--models engine/weights/default.pt other.pt]
        [--workers 2] [--json out.json]

Needs mediapipe, scikit-image and openpyxl (all in the dev install).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MACRO_KINDS = ("smile", "brow_raise", "brow_lower", "jaw_drop", "surprise")
MICRO_KINDS = ("smile", "brow_raise", "brow_lower")


def clip_events(rng: np.random.Generator, n_frames: int, fps: float) -> list:
    """Random non-overlapping events for one clip (see the module docstring)."""
    from training.warpclip import WarpEvent

    events = []
    t = int(rng.integers(int(1.0 * fps), int(2.0 * fps)))
    while True:
        u = rng.random()
        if u < 0.5:
            dur = int(rng.integers(int(0.5 * fps), int(4.0 * fps) + 1))
            kind, inten, typ = str(rng.choice(MACRO_KINDS)), rng.uniform(0.7, 1.0), "macro"
        elif u < 0.75:
            dur = int(rng.integers(6, 16))
            kind, inten, typ = str(rng.choice(MICRO_KINDS)), rng.uniform(0.3, 0.6), "micro"
        else:
            dur = int(rng.integers(4, 13))
            kind, inten, typ = "eye_close", 1.0, "blink"
        if t + dur >= n_frames - int(0.5 * fps):
            break
        off = t + dur - 1
        apex = t + int(round(rng.uniform(0.3, 0.6) * (dur - 1)))
        events.append((WarpEvent(kind, t, apex, off, float(round(inten, 3)),
                                 None if typ == "blink" else typ), typ))
        t = off + 1 + int(rng.integers(int(0.7 * fps), int(2.0 * fps) + 1))
    return events


CAMERAS = ("normal", "small", "dim", "mirror")


def camera_view(frame: np.ndarray, camera: str, rng: np.random.Generator) -> np.ndarray:
    """What a worse camera would record of a rendered RGB frame (same events, same timing).

    ``small``: half the resolution (the face about 75 px wide instead of 150: a far or cheap
    camera); ``dim``: a third of the light with stronger sensor noise (sd 4 grey levels);
    ``mirror``: flipped left-right (the face's asymmetries swap sides).
    """
    import cv2

    if camera == "normal":
        return frame
    if camera == "small":
        h, w = frame.shape[:2]
        return cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    if camera == "dim":
        dark = frame.astype(np.float32) * 0.35 + rng.normal(0.0, 4.0, frame.shape)
        return np.clip(np.round(dark), 0, 255).astype(np.uint8)
    if camera == "mirror":
        return np.ascontiguousarray(frame[:, ::-1])
    raise ValueError(f"unknown camera {camera!r}; one of {', '.join(CAMERAS)}")


def make_release(root: Path, clips: int, seconds: float, seed: int,
                 camera: str = "normal") -> dict:
    """Render the clips as JPEG frame folders plus a CAS(ME)^2-style label workbook."""
    import cv2
    import openpyxl

    from training.warpclip import ClipSpec, HeadMotion, render_frames

    fps = 30.0
    n = int(round(seconds * fps))
    rows, counts = [], {"macro": 0, "micro": 0, "blink": 0}
    codes = []
    for c in range(clips):
        rng = np.random.default_rng(np.random.SeedSequence([seed, c]))
        evs = clip_events(rng, n, fps)
        spec = ClipSpec(n, fps=fps, size=(640, 360), events=tuple(e for e, _ in evs),
                        head_motion=HeadMotion(float(rng.uniform(2, 6)),
                                               float(rng.uniform(0.5, 2.0)),
                                               float(rng.uniform(0.005, 0.02))),
                        noise_std=float(rng.uniform(1.0, 3.0)), seed=seed * 1000 + c)
        subj = c + 1
        code = f"{c + 1:02d}01"
        folder = root / "rawpic" / f"s{subj}" / f"{subj}_{code}warpclip"
        folder.mkdir(parents=True, exist_ok=True)
        cam_rng = np.random.default_rng(np.random.SeedSequence([seed, c, 7]))
        for i, frame in enumerate(render_frames(spec), start=1):
            frame = camera_view(frame, camera, cam_rng)
            cv2.imwrite(str(folder / f"img{i}.jpg"), frame[:, :, ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
        codes.append((code, f"clip{c + 1}"))
        k = 0
        for e, typ in evs:
            counts[typ] += 1
            if typ == "blink":
                continue
            k += 1
            # the workbook counts frames from 1 (image numbers)
            rows.append([subj, f"clip{c + 1}_{k}", e.onset + 1, e.apex + 1, e.offset + 1,
                         "", "", f"{typ}-expression", e.kind])
        print(f"  clip {c + 1}/{clips}: {len(evs)} events", flush=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "CASFEcode_final"
    for r in rows:
        ws.append(r)
    ws1 = wb.create_sheet("naming rule1")
    for c in range(clips):
        ws1.append([c + 1, f"s{c + 1}", c + 1])
    ws2 = wb.create_sheet("naming rule2")
    for code, name in codes:
        ws2.append([code, name])
    wb.save(root / "CAS(ME)^2code_final.xlsx")
    return {"clips": clips, "seconds": seconds, "frames": clips * n, "camera": camera, **counts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="work folder (made if missing)")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--camera", choices=CAMERAS, default="normal",
                    help="record the clips as a worse camera would (same events and timing)")
    ap.add_argument("--models", nargs="+", default=[str(ROOT / "engine/weights/default.pt")])
    ap.add_argument("--workers", type=int, default=1, help="pfes convert --workers")
    ap.add_argument("--json", type=Path, help="write all results here")
    args = ap.parse_args(argv)
    if args.clips < 1 or args.seconds < 5:
        ap.error("need --clips >= 1 and --seconds >= 5")
    pfes = [sys.executable, "-m", "pfes"]
    release, data = args.work / "release", args.work / "dataset"
    out: dict = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    t0 = time.monotonic()
    params = {"clips": args.clips, "seconds": args.seconds, "seed": args.seed,
              "camera": args.camera}
    made = release / "bench_params.json"
    if (release / "CAS(ME)^2code_final.xlsx").is_file() and made.is_file():
        old = json.loads(made.read_text())
        if old != params:
            print(f"bench_realpixels: {release} was rendered with {old}, not {params}; "
                  "use another --work", file=sys.stderr)
            return 2
    else:
        shutil.rmtree(release, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
        print(f"rendering {args.clips} clips of {args.seconds:.0f} s ({args.camera} camera)",
              flush=True)
        out["release"] = make_release(release, args.clips, args.seconds, args.seed, args.camera)
        made.write_text(json.dumps(params) + "\n")
    out["render_s"] = round(time.monotonic() - t0, 1)
    t1 = time.monotonic()
    subprocess.run([*pfes, "convert", "casme2", str(release), "--out", str(data), "--quiet",
                    "--workers", str(args.workers)], check=True)
    out["convert_s"] = round(time.monotonic() - t1, 1)
    conv = json.loads((data / "convert.json").read_text())
    out["convert"] = {k: conv[k] for k in ("videos", "annotations", "converted_now", "seconds")}
    out["results"] = {}
    for m in args.models:
        js = args.work / f"eval_{Path(m).stem}.json"
        subprocess.run([*pfes, "eval", "--data", str(data), "--model", m, "--json", str(js)],
                       check=True)
        r = json.loads(js.read_text())
        out["results"][m] = {k: {f: r[k][f] for f in ("tp", "fp", "n", "precision", "recall",
                                                        "f1")}
                             for k in ("overall", "macro", "micro")}
    print("\nmodel | overall F1 | macro F1 (TP/FP/N) | micro F1 (TP/FP/N)")
    for m, r in out["results"].items():
        ma, mi = r["macro"], r["micro"]
        print(f"{m} | {r['overall']['f1']:.3f} | {ma['f1']:.3f} ({ma['tp']}/{ma['fp']}/{ma['n']})"
              f" | {mi['f1']:.3f} ({mi['tp']}/{mi['fp']}/{mi['n']})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
