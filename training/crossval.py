"""Cross-validation by subject: leave-one-subject-out (or k folds), nested selection inside.

For each fold the held-out subjects are set aside first; the trainer then splits the remaining
subjects into inner-train and inner-val and selects the epoch and the detector thresholds on
inner-val only (``training.protocol``). Predictions on the held-out subjects of every fold are
pooled into one MEGC table, as the MEGC protocol pools TP, FP and N over all videos.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.detector import detect
from pfes.errors import InputError
from training.dataset import load_dataset
from training.evaluate import evaluate
from training.infer import predict_curves, to_intervals
from training.prepare import prepare_videos
from training.protocol import kfold_folds, loso_folds
from training.trainer import TrainConfig, train

__all__ = ["cross_validate"]


def cross_validate(
    data: str | Path,
    folds: str,
    cfg: TrainConfig,
    val_fraction: float = 0.2,
    progress: Callable[[str], None] = lambda _: None,
) -> dict:
    """``folds``: "loso" or an integer k as text. Returns pooled and per-fold MEGC results."""
    ds = load_dataset(data)
    if folds == "loso":
        splits = loso_folds(ds.subjects, val_fraction, seed=cfg.seed)
    elif folds.isdigit():
        splits = kfold_folds(ds.subjects, int(folds), val_fraction, seed=cfg.seed)
    else:
        raise InputError(f"--folds must be 'loso' or a number, got {folds!r}")
    progress(f"features for {len(ds.videos)} videos of {len(ds.subjects)} subjects")
    videos, fps = prepare_videos(ds, seed=cfg.seed)
    preds, truth, per_fold = {}, {}, []
    for i, sp in enumerate(splits):
        progress(f"fold {i + 1}/{len(splits)}: held out {', '.join(sp.test)}")
        res = train(videos, sp, cfg, fps)
        test = [v for v in videos if v.subject in set(sp.test)]
        fold_preds = {}
        for v in test:
            inten, apex = predict_curves(res.net, v.feats, v.valid)
            fold_preds[v.name] = to_intervals(detect(inten, apex, v.valid, res.detector, fps))
            truth[v.name] = v.truth
        preds.update(fold_preds)
        fold_res = evaluate(fold_preds, {v.name: v.truth for v in test})
        per_fold.append({"test": list(sp.test), "inner_val": list(sp.inner_val),
                         "best_epoch": res.best_epoch, "result": fold_res})
        progress(f"fold {i + 1}: held-out F1 {fold_res['overall']['f1']:.3f}")
    pooled = evaluate(preds, truth)
    pooled["protocol"] = {
        "folds": folds, "n_folds": len(splits), "data": str(ds.root),
        "selection": "nested: epoch and thresholds chosen on inner-val subjects of each fold; "
                     "held-out subjects used only for these predictions",
        "supervision": cfg.supervision,
    }
    return {"pooled": pooled, "folds": per_fold}
