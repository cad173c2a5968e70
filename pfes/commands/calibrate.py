"""``pfes calibrate``: refit the operating point and the apex temperature on labelled data."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["HELP", "add_arguments", "main"]

HELP = "fit detector thresholds and apex temperature on a labelled dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="labelled dataset directory "
                   "(use subjects that are not in your test set)")
    p.add_argument("--model", metavar="PATH", help="checkpoint to start from (default: bundled)")
    p.add_argument("--out", required=True, metavar="MODEL", help="calibrated checkpoint to write")


def main(args: argparse.Namespace) -> int:
    from calibration.instance_classifier import describe
    from pfes.cli import check_output_file
    from training.evaluate import format_table
    from training.workflow import calibrate_model

    check_output_file(args.out, "model")
    res = calibrate_model(args.data, args.model, args.out,
                          progress=lambda m: print(f"pfes calibrate: {m}", file=sys.stderr, flush=True))
    print("detector:", json.dumps(res["detector"]))
    for kind, e in res["ece"].items():
        print(f"apex {kind}: temperature {e['temperature']:.3f}, ECE {e['before']:.4f} -> "
              f"{e['after']:.4f} ({e['samples']} samples)")
    ic = res["instance_classifier"]
    print(describe(ic, label="F1"))
    print(format_table(res["result"], "on the calibration data (optimistic: fitted there)"))
    print(f"wrote {args.out}")
    return 0
