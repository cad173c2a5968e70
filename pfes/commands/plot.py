"""``pfes plot``: one video's intensity curve, apex probabilities, events and ground truth as
a PNG (training/plots.py). See docs/dashboard.md ("Plots")."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["HELP", "add_arguments", "main"]

HELP = "plot a video's intensity curve, apex probabilities, events and ground truth to a PNG"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        nargs="?",
        metavar="VIDEO|LANDMARKS.npz",
        help="a video file or a landmark file (default: the bundled demo clip, "
        "with its known expressions as ground truth)",
    )
    p.add_argument("--out", required=True, metavar="PNG", help="where to write the plot")
    p.add_argument("--model", metavar="PATH", help="checkpoint (default: the bundled model)")
    p.add_argument(
        "--truth",
        metavar="FILE",
        help="ground truth: annotations.csv (rows of this video, by file stem) or "
        'a JSON {"events": [{"onset", "offset", "type", "apex"}]}',
    )
    p.add_argument(
        "--no-verifier",
        action="store_true",
        help="the detector's brief-run verifier off (as pfes run --no-verifier)",
    )


def _truth(path: Path, video: str) -> list:
    from pfes.errors import InputError
    from training.evaluate import Interval

    if not path.is_file():
        raise InputError(f"--truth {path}: no such file")
    if path.suffix.lower() == ".csv":
        from training.dataset import _read_annotations

        rows = [a for a in _read_annotations(path) if a.video == video]
        return [Interval(a.onset, a.offset, a.kind, 1.0, a.apex) for a in rows]
    try:
        evs = json.loads(path.read_text())["events"]
        return [
            Interval(
                int(e["onset"]),
                int(e["offset"]),
                str(e["type"]),
                1.0,
                int(e["apex"]) if e.get("apex") is not None else None,
            )
            for e in evs
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(
            f"--truth {path}: not an annotations.csv nor a JSON with events "
            f"(onset, offset, type): {e}"
        ) from e


def main(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.checkpoint import load_checkpoint
    from pfes.cli import check_output_file
    from pfes.commands.run import DEMO_CLIP, DEMO_TRUTH
    from pfes.errors import InputError
    from training.infer import detector_config_of
    from training.plots import curves_for, plot_video
    from training.workflow import check_checkpoint_features

    out = check_output_file(args.out, "plot")
    src = Path(args.input) if args.input else DEMO_CLIP
    truth_path = Path(args.truth) if args.truth else (None if args.input else DEMO_TRUTH)
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    truth = _truth(truth_path, src.stem) if truth_path is not None else []
    ckpt = load_checkpoint(args.model)
    check_checkpoint_features(ckpt)
    if src.suffix.lower() == ".npz":
        from stream.landmark_file import read_landmark_file

        lm = read_landmark_file(src)
        landmarks, valid, fps = lm.landmarks, lm.valid, lm.fps
    else:
        from stream.extract import extract_landmarks

        print(f"pfes plot: tracking the face in {src}", file=sys.stderr, flush=True)
        series = extract_landmarks(src)
        landmarks, valid, fps = series.landmarks, series.valid, series.fps
    det = detector_config_of(ckpt)
    if args.no_verifier:
        det = dataclasses.replace(det, instance_verifier=())
    c = curves_for(ckpt, src.stem, landmarks, valid, fps, truth, det)
    plot_video(c, out)
    print(f"{out}: {len(c.predicted)} events" + (f", {len(truth)} true" if truth else ""))
    return 0
