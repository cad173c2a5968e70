"""``pfes extract VIDEO --out FILE.npz``: face-mesh landmarks of a video, for training."""

from __future__ import annotations

import argparse
import sys

__all__ = ["HELP", "add_arguments", "main"]

HELP = "extract per-frame face-mesh landmarks from a video into a landmark .npz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO", help="video file (mp4, mkv, avi, ...)")
    parser.add_argument("--out", required=True, metavar="FILE.npz", help="output landmark file")
    parser.add_argument(
        "--face-model",
        metavar="PATH",
        default=None,
        help="face_landmarker.task for the MediaPipe Tasks API (default: bundled legacy face mesh)",
    )
    parser.add_argument(
        "--max-faces",
        type=int,
        default=1,
        metavar="N",
        help="faces tracked per frame (the first/primary face is written; default 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from pfes.errors import InputError
    from stream.extract import extract_landmarks, save_landmarks_npz

    if args.max_faces < 1:
        raise InputError(f"--max-faces must be >= 1, got {args.max_faces}")
    if not str(args.out).endswith(".npz"):
        raise InputError(f"--out must end in .npz, got {args.out}")
    series = extract_landmarks(
        args.video,
        face_model=args.face_model,
        max_faces=args.max_faces,
        progress=not args.quiet,
    )
    out = save_landmarks_npz(series, args.out)
    n, found = series.n_frames, int(series.valid.sum())
    pct = 100.0 * found / n if n else 0.0
    print(f"wrote {out}: {n} frames at {series.fps:.3f} fps, face in {found} ({pct:.1f}%)")
    if n and not found:
        print(f"pfes extract: warning: no face found in {args.video}", file=sys.stderr)
    return 0
