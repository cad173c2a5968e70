"""``pfes synth``: write a synthetic spotting dataset (landmark videos + annotations.csv)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pfes.errors import InputError

__all__ = ["HELP", "add_arguments", "main"]

HELP = "generate a synthetic FACS-driven spotting dataset (landmarks + annotations)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output dataset directory")
    parser.add_argument("--subjects", type=int, default=24, metavar="N",
                        help="number of subjects (default 24)")
    parser.add_argument("--videos-per-subject", type=int, default=2, metavar="K",
                        help="videos per subject (default 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    parser.add_argument("--config", metavar="JSON",
                        help="JSON file of SynthConfig fields to override "
                             "(e.g. {\"micro_per_min\": [2, 3]})")
    parser.add_argument("--quiet-distractors", action="store_true",
                        help="no blinks, talking, head motion, jitter, glitches or dropouts")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty directory (replaces its synthetic files)")


def main(args: argparse.Namespace) -> int:
    from training.synth import SynthConfig, generate_dataset

    out = Path(args.out)
    if args.subjects < 1 or args.videos_per_subject < 1:
        raise InputError("--subjects and --videos-per-subject must be >= 1")
    if args.seed < 0:
        raise InputError("--seed must be >= 0")
    if out.exists() and out.is_dir() and any(out.iterdir()) and not args.force:
        raise InputError(f"{out} is not empty (use --force to overwrite)")
    fields: dict = {}
    if args.config:
        try:
            fields = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read --config {args.config}: {e}") from e
        if not isinstance(fields, dict):
            raise InputError(f"--config {args.config} must hold a JSON object")
    fields = {**fields, "fps": args.fps}
    if args.quiet_distractors:
        fields["distractors"] = False
    cfg = SynthConfig.from_dict(fields)
    tty = sys.stderr.isatty()

    def progress(done: int, n: int) -> None:
        if tty or done == n or done % 10 == 0:
            end = "\n" if done == n or not tty else ""
            print(f"\rpfes synth: {done}/{n} videos", end=end, file=sys.stderr, flush=True)

    try:
        summary = generate_dataset(out, subjects=args.subjects,
                                   videos_per_subject=args.videos_per_subject, seed=args.seed,
                                   config=cfg, overwrite=args.force, progress=progress)
    except OSError as e:
        raise InputError(f"cannot write {out}: {e.strerror or e}") from e
    print(f"wrote {summary['videos']} videos ({summary['seconds'] / 60:.1f} min, "
          f"{summary['macro']} macro, {summary['micro']} micro) to {out}")
    return 0
