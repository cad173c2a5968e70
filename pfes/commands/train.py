"""``pfes train``: train a spotter on a dataset directory (nested selection, never the test set)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["HELP", "add_arguments", "main"]

HELP = "train a model on a dataset directory (point / hard / full supervision)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="dataset directory (design.md layout)")
    p.add_argument("--out", required=True, metavar="MODEL", help="checkpoint to write (.pt)")
    p.add_argument("--recipe", default="pfes", metavar="NAME|FILE",
                   help="settings to start from: pfes (our defaults), paper (the reference's "
                   "losses, weights, GIM for both classes and proposals) or a .toml/.json file "
                   "(docs/training.md, \"Recipes\"); every flag below overrides it")
    p.add_argument("--supervision", choices=("point", "hard", "full"), default=None,
                   help="point: GIM from point labels (default); hard: fixed windows around "
                   "points; full: ground-truth intervals")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (pfes recipe: 60 with point labels, 40 with hard or full)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam's learning rate (pfes recipe: 1e-3 with point labels, 2e-3 with "
                   "hard or full)")
    p.add_argument("--iac", action=argparse.BooleanOptionalAction, default=None,
                   help="the intensity-aware contrastive loss (on in both recipes; --no-iac "
                   "changes only the loss, not the order of the batches)")
    p.add_argument("--gim-space", choices=("input", "proj"), default=None,
                   help="features for GIM's Gaussian: input x_t (recipes' choice) or projected "
                   "g_t (reference)")
    p.add_argument("--gim-macro-scale", type=float, default=None, metavar="S",
                   help="scale GIM's macro windows k_c and D_max (1 = the paper's constants; "
                   "2 covers expressions up to 4 s)")
    p.add_argument("--gim-micro", choices=("gim", "hard", "point"), default=None,
                   help="micro points under point supervision: fixed hard windows around the "
                   "point at every epoch (hard; pfes recipe), GIM like macro points (gim; the "
                   "paper recipe) or GIM's span and Gaussian centred on the point without the "
                   "pseudo-apex search (point)")
    p.add_argument("--gim-variant", choices=("paper", "released"), default=None,
                   help="GIM's labels: the paper's clean Gaussian (paper; both recipes) or the "
                   "reference code's, built from dropout-0.7 train-mode outputs (released)")
    p.add_argument("--hard-negatives", type=float, default=None, metavar="FRAC",
                   help="share of the negatives taken as the highest-scoring frames more than "
                   "4 s from every point (certain background; pfes recipe 0.5); 0 = the "
                   "reference's lowest-scoring negatives (paper recipe)")
    p.add_argument("--ema-epochs", type=float, default=None, metavar="E",
                   help="select and save an exponential moving average of the weights over "
                   "about E epochs (default 0: off)")
    p.add_argument("--instance-classifier", action=argparse.BooleanOptionalAction, default=None,
                   help="fit the detector's instance classifier on the selection subjects, kept "
                   "if it raises their F1 (default: on); --no-instance-classifier classifies "
                   "brief runs by the apex branch alone")
    p.add_argument("--despike", type=float, default=0.0, metavar="IOD",
                   help="features: hold a region that jumps more than IOD inter-ocular "
                   "distances in one frame for up to 3 frames (a tracker-glitch filter; "
                   "default 0: off); the model records it and applies it wherever it runs")
    p.add_argument("--stable-set", choices=["default", "core"], default="default",
                   help="features: points of the head-motion fit (default: nose, eye corners, "
                   "forehead, face contour; core: nose bridge and inner eye corners, which "
                   "MediaPipe does not drag along when the eyes close)")
    p.add_argument("--loss-weights", choices=("casme2", "samm-lv"), default=None,
                   help="the reference's loss weights for CAS(ME)^2 (the recipes' values; also "
                   "used for the synthetic data) or SAMM-LV (IAC 2e-6, sparsity 0.3); the "
                   "recipe's loss forms stay")
    p.add_argument("--lookahead", type=int, default=None, metavar="D",
                   help="frames of look-ahead (adds D frames of latency; default 0; the "
                   "reference's bidirectional network is closest with 8)")
    p.add_argument("--input-scaling", action=argparse.BooleanOptionalAction, default=None,
                   help="standardise each feature (training mean and spread) while training; "
                        "folded into the saved weights, so the model still takes raw features "
                        "(pfes recipe: on with point labels, off with hard or full)")
    p.add_argument("--selection", choices=("grid", "pipeline"), default=None,
                   help="what picks the epoch on the selection subjects: the whole pipeline the "
                        "model will run, dip bridging and instance classifier included "
                        "(pipeline; about 20 s more per selection epoch), or the detector's "
                        "thresholds alone (grid) (pfes recipe: pipeline with point labels, grid "
                        "with hard or full)")
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="fraction of subjects held aside for epoch and threshold selection")
    p.add_argument("--seed", type=int, default=None)


# flag -> TrainConfig field, applied over the recipe when the flag is given
_OVERRIDES = {
    "supervision": "supervision", "lr": "lr", "iac": "use_iac", "gim_space": "gim_space",
    "gim_macro_scale": "gim_macro_scale", "gim_micro": "gim_micro", "gim_variant": "gim_variant",
    "hard_negatives": "hard_negative_fraction", "ema_epochs": "ema_epochs",
    "instance_classifier": "instance_classifier", "lookahead": "lookahead_frames",
    "input_scaling": "input_scaling", "selection": "selection", "channels": "channels",
    "seed": "seed",
}


def main(args: argparse.Namespace) -> int:
    import dataclasses

    from pfes.cli import check_output_file, epochs_option
    from pfes.errors import InputError
    from stream.features import FeatureConfig
    from training.losses import LOSS_PRESETS
    from training.recipe import recipe_config
    from training.workflow import train_model

    # checked here so that bad usage is exit 2 and fails before features and training
    if args.channels is not None and args.channels < 1:
        raise InputError(f"--channels must be >= 1, got {args.channels}")
    if args.lr is not None and not args.lr > 0:
        raise InputError(f"--lr must be > 0, got {args.lr}")
    if args.lookahead is not None and args.lookahead < 0:
        raise InputError(f"--lookahead must be >= 0, got {args.lookahead}")
    if args.ema_epochs is not None and not 0.0 <= args.ema_epochs <= 100.0:
        raise InputError(f"--ema-epochs must be in [0, 100], got {args.ema_epochs}")
    if args.hard_negatives is not None and not 0.0 <= args.hard_negatives <= 1.0:
        raise InputError(f"--hard-negatives must be in [0, 1], got {args.hard_negatives}")
    if not 0.0 <= args.despike <= 1.0:
        raise InputError(f"--despike must be in [0, 1] IOD, got {args.despike}")
    check_output_file(args.out, "model")
    overrides = {field: getattr(args, flag) for flag, field in _OVERRIDES.items()
                 if getattr(args, flag) is not None}
    if args.epochs is not None:
        overrides["epochs"] = epochs_option(args.epochs)
    weight_overrides = None
    if args.loss_weights is not None:  # the preset's numbers, the recipe's forms
        preset = LOSS_PRESETS[args.loss_weights]
        weight_overrides = {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)
                            if not f.name.endswith("_form")}
    cfg = recipe_config(args.recipe, overrides, weight_overrides)
    _check_labels(args.data)
    train_model(args.data, args.out, cfg, val_fraction=args.val_fraction,
                features=FeatureConfig(despike_iod=args.despike, stable_set=args.stable_set),
                progress=lambda m: print(f"pfes train: {m}", file=sys.stderr, flush=True))
    return 0


def _check_labels(data: str) -> None:
    """A dataset without a single labelled expression trains nothing: exit 2, not a model."""
    from pfes.errors import InputError
    from training.dataset import load_dataset

    if not load_dataset(data).annotations:
        raise InputError(f"{data}/annotations.csv lists no expressions (only a header?); "
                         "training needs labelled expressions")
