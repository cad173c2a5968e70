"""``pfes eval``: the MEGC table of a model on a dataset directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["HELP", "add_arguments", "main"]

HELP = "score a model on a dataset directory (MEGC: TP, FP, N, precision, recall, F1)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="dataset directory (design.md layout)")
    src.add_argument("--videos", metavar="DIR",
                     help="a folder of real videos with annotations.csv (and optional spans.csv): "
                     "recall / precision at IoU >= 0.5, events in neutral spans, false events per "
                     "minute of talking, per clip (see docs/real-faces.md)")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="--videos: keep extracted landmarks here (default ~/.cache/pfes/landmarks)")
    p.add_argument("--no-real-face", action="store_true",
                   help="--videos: the network and its detector alone, without the real-face stage")
    p.add_argument("--face-model", metavar="PATH", default=None,
                   help="--videos: face_landmarker.task (or face_blendshapes.tflite) to use")
    p.add_argument("--model", metavar="PATH", help="checkpoint (default: the bundled model)")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    p.add_argument("--proposals", choices=("online", "offline"), default="online",
                   help="online: the live peak detector (default); offline: the reference's "
                   "multi-threshold search")
    p.add_argument("--proposal-preset", choices=("pfes", "casme2", "samm-lv", "casme3"),
                   default=None,
                   help="settings of the offline search: the reference's per-dataset score "
                   "floors, caps and duration counting (casme2, samm-lv, casme3) or ours (pfes: "
                   "one floor of 0.3) (default: what the model's training recipe names; pfes "
                   "for models without one)")
    p.add_argument("--plots", metavar="DIR",
                   help="also draw each video's intensity, apex probabilities, events and ground "
                   "truth to DIR/<video>.png (online proposals)")
    p.add_argument("--no-verifier", action="store_true",
                   help="score with the detector's brief-run verifier off (what the model finds "
                   "with its instance classifier alone: more micro-expressions, more false alarms)")


def main(args: argparse.Namespace) -> int:
    from pfes.cli import check_output_file
    from pfes.errors import InputError
    from training.evaluate import format_table
    from training.workflow import evaluate_model

    if args.json:
        check_output_file(args.json, "JSON")
    if args.videos:
        return _main_videos(args)
    res = evaluate_model(args.data, args.model, args.proposals,
                         progress=lambda m: print(f"pfes eval: {m}", file=sys.stderr, flush=True),
                         verifier=not args.no_verifier, proposal_preset=args.proposal_preset)
    proto = res["protocol"]
    print(format_table(res, f"MEGC spotting on {proto['data']} ({proto['videos']} videos, "
                            f"{proto['subjects']} subjects, {proto['proposals']} proposals)"))
    if args.plots:
        from training.plots import plot_dataset

        paths = plot_dataset(args.data, args.model, args.plots, verifier=not args.no_verifier)
        print(f"pfes eval: {len(paths)} plots in {args.plots}", file=sys.stderr)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        except OSError as e:
            raise InputError(f"cannot write JSON {args.json}: {e.strerror or e}") from e
    return 0


def _main_videos(args: argparse.Namespace) -> int:
    import os

    from pfes.errors import InputError
    from training.realeval import evaluate_real_videos, format_real_table

    cache = args.cache or os.path.join(os.path.expanduser("~"), ".cache", "pfes", "landmarks")
    res, events = evaluate_real_videos(
        args.videos, args.model, real_face=not args.no_real_face, face_model=args.face_model,
        cache_dir=cache, progress=lambda m: print(f"pfes eval: {m}", file=sys.stderr, flush=True))
    stage = "network + real-face stage" if not args.no_real_face else "network alone"
    print(format_real_table(res, f"real videos {args.videos} ({res['protocol']['videos']} clips, "
                                 f"{stage}; IoU >= 0.5)"))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps({**res, "events": events}, indent=2) + "\n")
        except OSError as e:
            raise InputError(f"cannot write JSON {args.json}: {e.strerror or e}") from e
    return 0
