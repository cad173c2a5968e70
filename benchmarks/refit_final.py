"""Re-run a trained model's last training step (its operating point) with another final fit.

    python benchmarks/refit_final.py --data TRAIN_DIR --model M.pt --out M2.pt [--final-fit best]

``pfes train`` ends by fitting the chosen epoch's operating point on its selection subjects
(``training.trainer.final_operating_point``). This repeats that step for a saved checkpoint, on
the same selection subjects (read from the checkpoint; ``--data`` must be the dataset it was
trained on), with ``--final-fit`` in place of the one it was trained with, and saves the
result; the network is untouched. Training is deterministic for a seed and the final fit never
changes which epoch is chosen, so this gives the model that ``pfes train ... --final-fit X``
would have saved, in about a minute instead of half an hour. With the checkpoint's own final
fit it must reproduce the saved detector, which the script checks and prints every time.

Exit codes: 0 done, 1 bad input or an unwritable --out (one line on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def refit(data: Path, model: Path, out: Path, final_fit: str) -> dict:
    from engine.checkpoint import load_checkpoint, save_checkpoint
    from pfes.errors import InputError
    from training.dataset import load_dataset
    from training.prepare import prepare_videos
    from training.trainer import TrainConfig, final_operating_point, video_curves
    from training.workflow import check_checkpoint_features

    ckpt = load_checkpoint(model)
    check_checkpoint_features(ckpt)
    training = ckpt.meta.get("training", {})
    saved = training.get("config", {})
    subjects = set(training.get("inner_val_subjects", []))
    if not saved or not subjects:
        raise InputError(f"{model}: no training record (config, selection subjects) to refit from")
    ds = load_dataset(data)
    names = [v for v in ds.videos if ds.subject_of[v] in subjects]
    missing = subjects - {ds.subject_of[v] for v in names}
    if missing:
        raise InputError(f"{data}: lacks the model's selection subjects {sorted(missing)[:3]}")
    videos, fps = prepare_videos(ds, names, feature_spec=ckpt.meta.get("feature_spec"))
    old_fit = saved.get("final_fit", "wide")
    common = {"supervision": saved.get("supervision", "point"),
              "instance_classifier": bool(saved.get("instance_classifier", True)),
              "lookahead_frames": int(saved.get("lookahead_frames", 0))}
    curves = video_curves(ckpt.net, videos)
    det, result, ic, kept = final_operating_point(curves, fps, TrainConfig(**common, final_fit=final_fit))
    # the check: the checkpoint's own final fit on these curves gives its saved detector
    # ("best" keeping the final grid is the wide fit itself: no need to fit it again)
    same_fit = final_fit == old_fit or (old_fit == "wide" and kept == "final")
    own = det if same_fit else final_operating_point(
        curves, fps, TrainConfig(**common, final_fit=old_fit))[0]
    same_as_saved = own.to_dict() == ckpt.meta.get("detector")
    meta = dict(ckpt.meta)
    meta["detector"] = det.to_dict()
    meta["training"] = {**training, "config": {**saved, "final_fit": final_fit}, "val_result": result,
                        "instance_classifier": ic, "final_grid": kept,
                        "refit_from": {"model": str(model), "final_fit": old_fit}}
    save_checkpoint(out, ckpt.net, meta)
    return {"model": str(model), "out": str(out), "final_fit": final_fit, "kept": kept,
            "selection_f1": {"before": training.get("val_result", {}).get("overall", {}).get("f1"),
                             "after": result["overall"]["f1"]},
            "selection_micro_f1": {"before": training.get("val_result", {}).get("micro", {}).get("f1"),
                                   "after": result["micro"]["f1"]},
            "same_as_saved": same_as_saved}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="the dataset the model was trained on")
    p.add_argument("--model", required=True, type=Path, help="a checkpoint from `pfes train`")
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write")
    p.add_argument("--final-fit", choices=("wide", "best"), default="best")
    args = p.parse_args(argv)

    import torch

    from pfes.cli import check_output_file
    from pfes.errors import PfesError

    torch.set_num_threads(1)
    try:
        check_output_file(args.out, "model")  # before the minutes of fitting
        r = refit(args.data, args.model, args.out, args.final_fit)
    except PfesError as e:
        print(f"refit_final: {e}", file=sys.stderr)
        return 1
    b, a = r["selection_f1"], r["selection_micro_f1"]
    extra = f"; its own final fit reproduces the saved detector: {r['same_as_saved']}"
    print(f"{r['model']} -> {r['out']}: final fit {r['final_fit']}, kept the {r['kept']} grid; "
          f"selection F1 {b['before']} -> {b['after']:.4f} (micro {a['before']} -> {a['after']:.4f}){extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
