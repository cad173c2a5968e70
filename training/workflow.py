"""The offline workflows behind ``pfes train``, ``pfes eval`` and ``pfes calibrate``.

Each takes a dataset directory (design.md layout) and a checkpoint path, reports progress
through a callback, and raises :class:`pfes.errors.PfesError` subclasses for bad input.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from calibration.instance_classifier import (
    BASE_MICRO_LIMIT,
    describe,
    fit_instance_classifier,
    micro_limits_for,
    summarize_instance_classifier,
)
from calibration.operating_point import FINAL_GRID, Curve, fit_operating_point
from engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from engine.detector import DetectorConfig
from pfes.errors import InputError
from stream.features import FeatureConfig
from training.dataset import Dataset, load_dataset
from training.evaluate import Interval, evaluate
from training.infer import detector_config_of, predict_curves, to_intervals
from training.prepare import prepare_videos
from training.proposals import PROPOSAL_PRESETS, offline_proposals
from training.protocol import Split, nested_split
from training.trainer import TrainConfig, TrainResult, TrainVideo, train

__all__ = ["train_model", "evaluate_model", "calibrate_model", "predictions_for", "git_revision",
           "check_checkpoint_features", "apply_thread_env"]

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _data_provenance(ds: Dataset) -> dict:
    info: dict = {"path": str(ds.root), "videos": len(ds.videos), "subjects": len(ds.subjects),
                  "instances": len(ds.annotations)}
    synth = ds.root / "synth_config.json"
    if synth.is_file():
        try:
            info["synth"] = json.loads(synth.read_text())
        except (OSError, ValueError):
            pass
    return info


def check_checkpoint_features(ckpt: Checkpoint) -> None:
    """Raise ModelError if the checkpoint was trained on another feature vector."""
    from stream.features import check_feature_spec

    check_feature_spec(ckpt.meta.get("feature_spec") or {})


def apply_thread_env() -> None:
    """Honour PFES_TORCH_THREADS (benchmarks run jobs side by side with one thread each)."""
    import os

    import torch

    n = os.environ.get("PFES_TORCH_THREADS")
    if n and n.isdigit() and int(n) > 0:
        torch.set_num_threads(int(n))


def _quiet(_: str) -> None:
    pass


def train_model(
    data: str | Path,
    out: str | Path,
    cfg: TrainConfig,
    val_fraction: float = 0.2,
    progress: Progress = _quiet,
    split: Split | None = None,
    features: FeatureConfig | None = None,
) -> TrainResult:
    """Train on every subject of ``data`` (inner-val subjects for selection) and save ``out``.

    features: feature settings (None: defaults); the checkpoint records them.
    """
    from stream.features import feature_spec

    spec = feature_spec(features)
    apply_thread_env()
    ds = load_dataset(data)
    split = split or nested_split(ds.subjects, val_fraction, seed=cfg.seed)
    use = set(split.inner_train) | set(split.inner_val)
    names = [v for v in ds.videos if ds.subject_of[v] in use]
    progress(f"features for {len(names)} videos ({len(split.inner_train)} training subjects, "
             f"{len(split.inner_val)} selection subjects)")
    videos, fps = prepare_videos(ds, names, seed=cfg.seed, feature_spec=spec)

    def on_epoch(rec: dict) -> None:
        extra = f"  val F1 {rec['val_f1']:.3f} (micro {rec['val_micro_f1']:.3f})" if "val_f1" in rec else ""
        if "grad_iac" in rec:  # what the contrastive loss pulls on the backbone, against all terms
            extra = f"  grad IAC {rec['grad_iac']:.2g} of {rec['grad_total']:.2g}{extra}"
        progress(f"epoch {rec['epoch'] + 1}/{cfg.epochs}  {rec['seconds']:.1f}s  "
                 f"intensity {rec.get('intensity', 0):.4f}{extra}")

    res = train(videos, split, cfg, fps, progress=on_epoch)
    meta = {
        "feature_spec": spec,
        "detector": res.detector.to_dict(),
        "fps": fps,
        "training": {
            "config": cfg.to_dict(),
            "best_epoch": res.best_epoch,
            "selection": "nested: epoch and detector thresholds chosen on inner-val subjects only",
            "inner_train_subjects": list(split.inner_train),
            "inner_val_subjects": list(split.inner_val),
            "val_result": res.val_result,
            "instance_classifier": res.instance_classifier,
            "history": res.history,
        },
        "provenance": {
            "data": _data_provenance(ds),
            "git": git_revision(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    save_checkpoint(out, res.net, meta)
    ic = res.instance_classifier
    if ic is not None:
        progress(describe(ic))
    progress(f"saved {out} (best epoch {res.best_epoch + 1}, selection F1 "
             f"{res.val_result['overall']['f1']:.3f})")
    return res


def predictions_for(
    ckpt: Checkpoint,
    videos: list[TrainVideo],
    fps: float,
    proposals: str = "online",
    detector: DetectorConfig | None = None,
    proposal_preset: str = "pfes",
) -> dict[str, list[Interval]]:
    """Predicted intervals per video with the online detector or the offline search
    (``PROPOSAL_PRESETS[proposal_preset]``)."""
    from engine.detector import detect

    det = detector or detector_config_of(ckpt)
    if proposal_preset not in PROPOSAL_PRESETS:
        raise InputError(f"proposal preset must be one of {sorted(PROPOSAL_PRESETS)}, "
                         f"got {proposal_preset!r}")
    pcfg = PROPOSAL_PRESETS[proposal_preset]
    out: dict[str, list[Interval]] = {}
    for v in videos:
        inten, apex = predict_curves(ckpt.net, v.feats, v.valid)
        if proposals == "online":
            out[v.name] = to_intervals(detect(inten, apex, v.valid, det, fps))
        elif proposals == "offline":
            inten = np.where(v.valid, inten, 0.0)
            out[v.name] = offline_proposals(inten, apex, fps, pcfg)
        else:
            raise InputError(f"proposals must be online or offline, got {proposals!r}")
    return out


def evaluate_model(
    data: str | Path,
    model: str | Path | None,
    proposals: str = "online",
    progress: Progress = _quiet,
    verifier: bool = True,
    proposal_preset: str | None = None,
) -> dict:
    """MEGC result of ``model`` on every video of ``data`` (``verifier=False``: with the
    detector's brief-run verifier off; ``proposal_preset``: the offline search's settings,
    None: the ones the model's recipe names, else "pfes")."""
    apply_thread_env()
    ckpt = load_checkpoint(model)
    check_checkpoint_features(ckpt)
    ds = load_dataset(data)
    progress(f"features for {len(ds.videos)} videos")
    videos, fps = prepare_videos(ds, feature_spec=ckpt.meta.get("feature_spec"))
    det = detector_config_of(ckpt)
    if proposal_preset is None:
        proposal_preset = str(ckpt.meta.get("training", {}).get("config", {})
                              .get("proposal_preset", "pfes"))
    if not verifier:
        det = dataclasses.replace(det, instance_verifier=())
    preds = predictions_for(ckpt, videos, fps, proposals, det, proposal_preset)
    res = evaluate(preds, {v.name: v.truth for v in videos})
    res["protocol"] = {"model": str(ckpt.path), "data": str(ds.root), "videos": len(videos),
                       "subjects": len(ds.subjects), "proposals": proposals, "verifier": verifier,
                       "proposal_preset": proposal_preset if proposals == "offline" else None,
                       "model_selection": ckpt.meta.get("training", {}).get("selection", "unknown")}
    return res


def calibrate_model(
    data: str | Path,
    model: str | Path | None,
    out: str | Path,
    progress: Progress = _quiet,
) -> dict:
    """Refit the detector's operating point and the apex temperature on ``data``; save ``out``."""
    from calibration.temperature import expected_calibration_error, fit_temperature

    ckpt = load_checkpoint(model)
    check_checkpoint_features(ckpt)
    ds = load_dataset(data)
    progress(f"features for {len(ds.videos)} videos")
    videos, fps = prepare_videos(ds, feature_spec=ckpt.meta.get("feature_spec"))
    curves = []
    scores: list[list[float]] = [[], []]
    labels: list[list[float]] = [[], []]
    rng = np.random.default_rng(0)
    for v in videos:
        inten, apex = predict_curves(ckpt.net, v.feats, v.valid)
        curves.append(Curve(v.name, inten, apex, v.valid, v.truth))
        busy = np.zeros(len(inten), bool)
        for gt in v.truth:
            busy[max(0, gt.onset - 15) : gt.offset + 16] = True
            for c, kind in enumerate(("macro", "micro")):
                scores[c].append(float(apex[gt.apex if gt.apex is not None else gt.onset, c]))
                labels[c].append(1.0 if gt.kind == kind else 0.0)
        idle = np.flatnonzero(~busy & v.valid)
        for i in rng.choice(idle, min(len(idle), 2 * len(v.truth) + 2), replace=False) if idle.size else []:
            for c in (0, 1):
                scores[c].append(float(apex[i, c]))
                labels[c].append(0.0)
    temps, ece = [], {}
    for c, kind in enumerate(("macro", "micro")):
        s, y = np.asarray(scores[c]), np.asarray(labels[c])
        if y.sum() == 0 or y.sum() == len(y):
            temps.append(1.0)
            continue
        t = float(fit_temperature(s, y))
        temps.append(t)
        from calibration.temperature import apply_temperature

        ece[kind] = {"before": float(expected_calibration_error(s, y)),
                     "after": float(expected_calibration_error(apply_temperature(s, t), y)),
                     "temperature": t, "samples": int(len(y))}
    progress("fitting the detector's operating point")
    base = dataclasses.replace(detector_config_of(ckpt), apex_temperature=(temps[0], temps[1]))
    limits = micro_limits_for(ckpt.config.lookahead_frames)
    if limits:  # as in training: the operating point at the base micro limit, longer ones after
        base = dataclasses.replace(
            base, micro_max_duration_s=min(base.micro_max_duration_s, BASE_MICRO_LIMIT))
    det, info = fit_operating_point(curves, fps, base=base, grid=FINAL_GRID)
    progress("fitting the instance classifier and verifier (brief runs: macro or micro, kept or dropped)")
    det, ic_info = fit_instance_classifier(curves, fps, det, micro_limits=limits)
    info = {"result": ic_info["result"]}
    meta = dict(ckpt.meta)
    meta["detector"] = det.to_dict()
    meta["calibration"] = {"data": str(ds.root), "ece": ece, "result": info["result"],
                           "instance_classifier": summarize_instance_classifier(ic_info),
                           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    save_checkpoint(out, ckpt.net, meta)
    return {"detector": det.to_dict(), "ece": ece, "result": info["result"],
            "instance_classifier": meta["calibration"]["instance_classifier"]}
