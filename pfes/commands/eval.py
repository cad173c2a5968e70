"""``pfes eval``: the MEGC table of a model on a dataset directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["HELP", "add_arguments", "main"]

HELP = "score a model on a dataset directory (MEGC: TP, FP, N, precision, recall, F1)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="dataset directory (design.md layout)")
    p.add_argument("--model", metavar="PATH", help="checkpoint (default: the bundled model)")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    p.add_argument("--proposals", choices=("online", "offline"), default="online",
                   help="online: the live peak detector (default); offline: the reference's "
                   "multi-threshold search")
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
    res = evaluate_model(args.data, args.model, args.proposals,
                         progress=lambda m: print(f"pfes eval: {m}", file=sys.stderr, flush=True),
                         verifier=not args.no_verifier)
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
