"""Give a checkpoint trained before the instance classifier (or its verifier) existed what ``pfes
train`` now does as its last step: fit the detector's instance classifier and verifier on the
checkpoint's own selection (inner-val) subjects, at its stored operating point, each kept if it
raises their F1 (a classifier already in the checkpoint is refitted).

Training is otherwise unchanged, so the result equals retraining with the current code (same
weights, same operating point), without the hours of retraining. The checkpoint records that
the classifier was added afterwards.

    python benchmarks/add_instance_classifier.py --model OLD.pt --data TRAIN_DIR --out NEW.pt

TRAIN_DIR must be the dataset the model was trained on (its selection subjects are read from
the checkpoint). Exit 2 on bad input, with a one-line message.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="the dataset the model was trained on")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-verifier", action="store_true",
                    help="fit the classifier only, as pfes train did before 2026-11-28")
    args = ap.parse_args(argv)

    from calibration.instance_classifier import (
        describe,
        fit_instance_classifier,
        micro_limits_for,
        summarize_instance_classifier,
    )
    from calibration.operating_point import score_operating_point
    from engine.checkpoint import load_checkpoint, save_checkpoint
    from pfes.errors import PfesError
    from training.dataset import load_dataset
    from training.infer import detector_config_of
    from training.prepare import prepare_videos
    from training.trainer import video_curves
    from training.workflow import apply_thread_env, git_revision

    apply_thread_env()
    try:
        ckpt = load_checkpoint(args.model)
        tr = ckpt.meta.get("training") or {}
        subjects = tr.get("inner_val_subjects")
        if not subjects:
            raise PfesError(f"{args.model}: no selection subjects recorded")
        ds = load_dataset(args.data)
        missing = sorted(set(subjects) - set(ds.subjects))
        if missing:
            raise PfesError(f"{args.data}: selection subjects {missing[:3]} not in this dataset")
        det = detector_config_of(ckpt)
        videos, fps = prepare_videos(ds, ds.videos_of(subjects), feature_spec=ckpt.meta.get("feature_spec"))
    except PfesError as e:
        print(f"add_instance_classifier: {e}", file=sys.stderr)
        return 2
    curves = video_curves(ckpt.net, videos)
    stored = tr.get("val_result", {}).get("overall", {}).get("f1")
    again = score_operating_point(curves, det, fps)["overall"]["f1"]
    if stored is not None and abs(stored - again) > 1e-9:
        print(f"add_instance_classifier: {args.data} does not reproduce the stored selection F1 "
              f"({again:.4f} against {stored:.4f}): not the training data?", file=sys.stderr)
        return 2
    new_det, info = fit_instance_classifier(
        curves, fps, det, verifier=not args.no_verifier,
        micro_limits=micro_limits_for(ckpt.config.lookahead_frames))
    meta = dict(ckpt.meta)
    meta["detector"] = new_det.to_dict()
    summary = summarize_instance_classifier(info)
    meta["training"] = dict(tr, val_result=info["result"], instance_classifier=summary)
    meta["instance_classifier_added"] = {
        "by": "benchmarks/add_instance_classifier.py", "from": str(args.model),
        "git": git_revision(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        save_checkpoint(args.out, ckpt.net, meta)
    except PfesError as e:
        print(f"add_instance_classifier: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {describe(summary)} (micro {summary['f1_without']['micro']:.3f} -> "
          f"{summary['f1_with']['micro']:.3f}); brief runs {summary['runs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
