"""``pfes crossval``: leave-one-subject-out (or k-fold) evaluation with nested selection."""

from __future__ import annotations

import argparse
import json
import sys

from pfes.cli import check_output_file, epochs_option

__all__ = ["HELP", "add_arguments", "main"]

HELP = "cross-validate by subject (LOSO or k folds, nested selection) and print the MEGC table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="dataset directory (design.md layout)")
    p.add_argument("--folds", default="loso", help="'loso' (default) or a number of folds")
    p.add_argument("--supervision", choices=("point", "hard", "full"), default="point")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: 60 with point labels, 40 with hard or full)")
    p.add_argument("--gim-macro-scale", type=float, default=1.0, metavar="S")
    p.add_argument("--gim-micro", choices=("gim", "hard", "point"), default="hard",
                   help="micro points: fixed hard windows (default) or GIM (the paper); see pfes train")
    p.add_argument("--no-iac", action="store_true")
    p.add_argument("--no-instance-classifier", action="store_true",
                   help="classify brief runs by the apex branch alone (see pfes train)")
    p.add_argument("--loss-weights", choices=("casme2", "samm-lv"), default="casme2",
                   help="the reference's loss weights for CAS(ME)^2 (default; also used for the "
                   "synthetic data) or SAMM-LV (IAC 2e-6, sparsity 0.3)")
    p.add_argument("--lookahead", type=int, default=0, metavar="D")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write pooled and per-fold results as JSON")


def main(args: argparse.Namespace) -> int:
    from training.crossval import cross_validate
    from training.evaluate import format_table
    from training.losses import LOSS_PRESETS
    from training.trainer import TrainConfig
    from training.workflow import apply_thread_env

    if args.json:
        check_output_file(args.json, "JSON output")
    apply_thread_env()
    cfg = TrainConfig(supervision=args.supervision, epochs=epochs_option(args.epochs), use_iac=not args.no_iac,
                      gim_macro_scale=args.gim_macro_scale, gim_micro=args.gim_micro,
                      lookahead_frames=args.lookahead,
                      instance_classifier=not args.no_instance_classifier,
                      channels=args.channels, seed=args.seed,
                      weights=LOSS_PRESETS[args.loss_weights])
    res = cross_validate(args.data, args.folds, cfg, args.val_fraction,
                         progress=lambda m: print(f"pfes crossval: {m}", file=sys.stderr, flush=True))
    p = res["pooled"]
    print(format_table(p, f"pooled over {p['protocol']['n_folds']} folds ({args.folds}), "
                          f"{args.supervision} supervision, nested selection"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    return 0
