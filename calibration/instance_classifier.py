"""Fit the detector's optional instance classifier (macro or micro for a brief run).

Why: the apex branch scores one frame, and at that frame a micro-expression and a short
macro-expression look alike (both rise over a few frames); its two sigmoids barely separate
them (on the bundled model's selection subjects the micro sigmoid of true micro-expressions
and of short macro-expressions overlap almost entirely). What separates them is the whole run:
how long the intensity stays up and how high. So, once the operating point is chosen, the runs
it produces on the selection subjects train a small logistic model over
``engine.detector.INSTANCE_FEATURES``; the detector then uses it for every run no longer than
the micro limit. It is kept only if it raises the selection F1 without lowering the selection
micro F1 ("Micro floor" below).

Labels: a brief run is "micro" when, reshaped as a micro instance, it matches a labelled
micro-expression (IoU >= 0.5), "macro" when, reshaped as a macro instance, it matches a
labelled macro-expression; runs that match nothing are false alarms whatever their class and
are left out of the fit.

Then the *verifier* (``DetectorConfig.instance_verifier``): a second logistic model over the
same features, fitted on the brief runs the chosen classifier produces, says whether a run is
an expression at all ("real": reshaped as the class it is given, it matches a labelled
instance of that class; "false": it matches nothing). Brief runs below the verify threshold
(the best selection F1 of ``VERIFY_THRESHOLDS``) are dropped; it is kept only if it raises the
selection F1 (and, like the classifier, does not lower its micro F1: "Micro floor" below).
Why: on the selection subjects of the 144-subject models about a third of the brief runs are
false alarms (fidgets, tracker glitches, the brief tail of a longer expression), and a run that stays lower and shorter than an expression of its class gives
itself away. Chosen on selection subjects and the development set only (2026-11-28, seven
144-subject models of four recipes: development F1 +0.004 to +0.038, every model up; the
micro F1 moved both ways, -0.10 to +0.01, because some true micro-expressions are dropped with
the false alarms).

Micro floor: each part (classifier, verifier) and each threshold is eligible only if it does not
lower the selection micro F1. The overall F1 that the selection maximises is dominated by
macro-expressions (about five to one), and where true and false brief runs look alike it can
rise when whole classes of brief runs are dropped: on the selection subjects of two look-ahead
models (hard windows, D = 8 and 16, 144 subjects) the verifier raised the overall F1 by
0.014 / 0.024 while lowering their micro F1 (0.345 -> 0.264, 0.315 -> 0.294); on the
development set it cut their micro F1 from 0.54 / 0.39 to 0.29 / 0.27. With the floor (2026-11-28, decided on the
development set): development overall F1 0.850 -> 0.853 and 0.868 -> 0.879, micro 0.29 -> 0.54
and 0.27 -> 0.42; unchanged for the three look-ahead-free models checked (the bundled one,
hard windows and GIM's default, seed 0), where the floor does not bind.

Look-ahead: a model that sees D frames ahead spreads its intensity around a brief event (on
the development set, hard windows, D = 8 and 16: runs on micro-expressions open 3-4 frames
before the labelled onset and last 15-16 frames against 9 at D = 0, and a third of them
exceed the 0.55 s micro limit and are called macro). So for such models the whole fit is also
run at the longer limits of ``LOOKAHEAD_MICRO_LIMITS`` and the best selection F1 wins, under
the micro floor measured at the base limit (``BASE_MICRO_LIMIT``, the detector's default), also
when a checkpoint that chose a longer limit is calibrated again. Chosen on the development set only (2026-11-28: raising the limit to 0.70 s
on those two models, nothing refitted, gave micro F1 0.54 -> 0.60 and 0.42 -> 0.50; 0.85 s lost
on both; at D = 0 it changed nothing).

Regularisation (``L2``): chosen on selection data only, over seven models (the bundled one,
three GIM and two hard-window seeds at 144 subjects, GIM at 72): the mean of the synthetic
selection F1 and the F1 on the real-pixel selection set (``bench_realpixels.py --seed 2``, the
bundled-model script's rule) was 0.819 / 0.838 / 0.831 for L2 0.01 / 0.1 / 1. Weaker
regularisation fits the synthetic selection subjects best (by 0.005-0.01) but learns their
exact run lengths, and MediaPipe on real pixels makes a micro-expression's run a few frames
longer than the synthetic data does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from calibration.operating_point import score_operating_point
from engine.detector import (
    INSTANCE_FEATURES,
    MACRO,
    MICRO,
    DetectorConfig,
    detect,
    instance_features,
    reshape,
    temper,
)
from training.evaluate import iou

__all__ = ["fit_instance_classifier", "micro_limits_for", "fit_logistic",
           "summarize_instance_classifier", "describe", "THRESHOLDS", "VERIFY_THRESHOLDS",
           "MIN_PER_CLASS", "L2", "LOOKAHEAD_MICRO_LIMITS", "BASE_MICRO_LIMIT"]

#: probability thresholds tried for "micro" (the best selection F1 wins)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
#: verifier thresholds tried (a brief run below it is dropped; the best selection F1 wins)
VERIFY_THRESHOLDS = (0.3, 0.4, 0.5, 0.6)
#: why a part was left out when it had enough runs to fit
NOT_KEPT = "did not raise the selection F1 without lowering its micro F1"
#: fewer labelled brief runs of either class than this: no classifier
MIN_PER_CLASS = 5
#: L2 penalty per sample on the standardised weights (see the module docstring)
L2 = 0.1
#: micro limits (s) also tried for look-ahead models (see "Look-ahead" in the module docstring)
LOOKAHEAD_MICRO_LIMITS = (0.7,)
#: the limit they are judged against: the detector's default micro limit (s)
BASE_MICRO_LIMIT = DetectorConfig().micro_max_duration_s


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, iters: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method on standardised inputs.

    x (n, d), y (n,) in {0, 1} -> d weights and a bias (d + 1,) for the *raw* inputs (the
    standardisation is folded in). Deterministic.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2 * len(x))
    reg[-1] = 0.0  # no penalty on the bias
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -60, 60)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    weights = w[:-1] / sd
    bias = w[-1] - float(np.sum(w[:-1] * mu / sd))
    return np.r_[weights, bias]


def _runs(curves: Sequence, det: DetectorConfig, fps: float):
    """Raw runs (no widening, no offset extension) with their instance features."""
    raw_cfg = dataclasses.replace(det, pad_to_s=0.0, offset_extend=0.0, instance_verifier=())
    micro_max = int(round(det.micro_max_duration_s * fps))
    tm, tu = det.apex_temperature
    for c in curves:
        for inst in detect(c.intensity, c.apex, c.valid, raw_cfg, fps):
            if inst.length > micro_max:
                continue
            s, e = inst.onset, inst.offset + 1
            ap = np.array([[temper(float(p[0]), tm), temper(float(p[1]), tu)] for p in c.apex[s:e]])
            f = instance_features(np.asarray(c.intensity[s:e], dtype=np.float64), ap,
                                  inst.macro_prob, inst.micro_prob, fps)
            yield c, inst, f


def _matches(c, inst, kind: str, pad: int, offset_extend: float) -> bool:
    r = reshape(dataclasses.replace(inst, kind=kind), pad, offset_extend)
    return any(g.kind == kind and iou(r.onset, r.offset, g.onset, g.offset) >= 0.5 for g in c.truth)


def micro_limits_for(lookahead: int) -> tuple[float, ...]:
    """Longer micro limits worth trying for a model that sees ``lookahead`` frames ahead (see
    "Look-ahead" in the module docstring): none for a causal model."""
    return LOOKAHEAD_MICRO_LIMITS if lookahead > 0 else ()


def fit_instance_classifier(
    curves: Sequence, fps: float, det: DetectorConfig, thresholds: Sequence[float] = THRESHOLDS,
    l2: float = L2, verifier: bool = True, micro_limits: Sequence[float] = (),
) -> tuple[DetectorConfig, dict]:
    """Fit the classifier and verifier at ``det``'s micro limit, or, when ``micro_limits``
    (seconds, e.g. :func:`micro_limits_for`) is given, at the base limit (the shorter of
    ``det``'s and :data:`BASE_MICRO_LIMIT`) and at each longer one of ``det``'s limit and
    ``micro_limits``; a longer limit is kept only if it raises the selection F1 without lowering
    the base limit's selection micro F1 (the micro floor). So a checkpoint that chose a longer
    limit before is judged again against the base limit when it is calibrated again. The info
    dict is :func:`_fit_parts`'s, plus ``"micro_limit"``: ``{"tried": [s, ...], "chosen": s}``
    when ``micro_limits`` is not empty."""
    if not micro_limits:
        return _fit_parts(curves, fps, det, thresholds, l2, verifier)
    own = det.micro_max_duration_s
    base_limit = min(own, BASE_MICRO_LIMIT)
    det = dataclasses.replace(det, micro_max_duration_s=base_limit)
    base_cfg, base = _fit_parts(curves, fps, det, thresholds, l2, verifier)
    tried = [base_limit]
    best_cfg, best = base_cfg, base
    for lim in sorted({float(x) for x in micro_limits} | {own, BASE_MICRO_LIMIT}):
        if lim <= base_limit or lim > det.macro_max_duration_s:
            continue
        tried.append(float(lim))
        cfg, info = _fit_parts(curves, fps, dataclasses.replace(det, micro_max_duration_s=float(lim)),
                               thresholds, l2, verifier)
        res, top = info["result"], best["result"]
        if ((res["overall"]["f1"], res["micro"]["f1"]) > (top["overall"]["f1"], top["micro"]["f1"])
                and res["micro"]["f1"] >= base["result"]["micro"]["f1"]):
            best_cfg, best = cfg, info
    best["before"] = base["before"]
    best["micro_limit"] = {"tried": tried, "chosen": best_cfg.micro_max_duration_s}
    return best_cfg, best


def _fit_parts(
    curves: Sequence, fps: float, det: DetectorConfig, thresholds: Sequence[float],
    l2: float, verifier: bool,
) -> tuple[DetectorConfig, dict]:
    """Fit the instance classifier, then the verifier (``verifier=True``), for the operating
    point ``det`` on labelled ``curves`` (``calibration.operating_point.Curve``). Returns the
    config to use (each part left out when it does not raise overall F1 without lowering the
    micro F1, or there are too few labelled brief runs) and ``{"used": bool (the classifier), "result": MEGC dict of the
    returned config, "before": MEGC dict with neither, "runs": {"micro": n, "macro": n,
    "unmatched": n}, "reason": str, "verifier": {"used": bool, "reason": str, "runs": {"real":
    n, "false": n}, "threshold": float | None}}``."""
    det = dataclasses.replace(det, instance_classifier=(), instance_verifier=())
    det, info = _fit_classifier(curves, fps, det, thresholds, l2)
    if verifier:
        det, info["verifier"] = _fit_verifier(curves, fps, det, info["result"], l2)
        info["result"] = info["verifier"].pop("result")
    return det, info


def _best_of(curves: Sequence, fps: float, det: DetectorConfig, before: dict,
             candidates: Sequence[DetectorConfig]) -> tuple[DetectorConfig, dict]:
    """The candidate with the best (overall, micro) F1 on ``curves`` if it beats ``det``, whose
    MEGC result is ``before``, without a lower micro F1 than ``before`` (see the module
    docstring, "Micro floor"); otherwise ``det``. Returns the config and its result."""
    best_key = (before["overall"]["f1"], before["micro"]["f1"])
    best_cfg, best_res = det, before
    for cfg in candidates:
        res = score_operating_point(curves, cfg, fps)
        key = (res["overall"]["f1"], res["micro"]["f1"])
        if key > best_key and res["micro"]["f1"] >= before["micro"]["f1"]:
            best_key, best_cfg, best_res = key, cfg, res
    return best_cfg, best_res


def _fit_classifier(curves: Sequence, fps: float, det: DetectorConfig, thresholds: Sequence[float],
                    l2: float) -> tuple[DetectorConfig, dict]:
    """The classifier for ``det`` (which has neither classifier nor verifier)."""
    pad = int(round(det.pad_to_s * fps))
    xs, ys = [], []
    unmatched = 0
    for c, inst, f in _runs(curves, det, fps):
        label = None
        for kind in (MICRO, MACRO):
            if _matches(c, inst, kind, pad, det.offset_extend):
                label = 1 if kind == MICRO else 0
                break
        if label is None:
            unmatched += 1
            continue
        xs.append(f)
        ys.append(label)
    y = np.asarray(ys)
    runs = {"micro": int((y == 1).sum()), "macro": int((y == 0).sum()), "unmatched": unmatched}
    before = score_operating_point(curves, det, fps)
    info = {"used": False, "result": before, "before": before, "runs": runs,
            "features": list(INSTANCE_FEATURES), "l2": l2}
    if runs["micro"] < MIN_PER_CLASS or runs["macro"] < MIN_PER_CLASS:
        info["reason"] = f"too few labelled brief runs ({runs['micro']} micro, {runs['macro']} macro)"
        return det, info
    w = tuple(float(v) for v in fit_logistic(np.asarray(xs), y, l2=l2))
    best_cfg, best_res = _best_of(curves, fps, det, before, [
        dataclasses.replace(det, instance_classifier=w, instance_threshold=float(thr))
        for thr in thresholds])
    info.update(used=bool(best_cfg.instance_classifier), result=best_res)
    info["reason"] = ("raised the selection F1" if info["used"]
                      else NOT_KEPT)
    return best_cfg, info


def _fit_verifier(curves: Sequence, fps: float, det: DetectorConfig, before: dict,
                  l2: float) -> tuple[DetectorConfig, dict]:
    """The verifier for ``det`` (classifier in place, if any); ``before``: its MEGC result."""
    pad = int(round(det.pad_to_s * fps))
    xs, ys = [], []
    for c, inst, f in _runs(curves, det, fps):
        xs.append(f)
        ys.append(1 if _matches(c, inst, inst.kind, pad, det.offset_extend) else 0)
    y = np.asarray(ys)
    runs = {"real": int((y == 1).sum()), "false": int((y == 0).sum())}
    info = {"used": False, "runs": runs, "threshold": None, "result": before}
    if runs["real"] < MIN_PER_CLASS or runs["false"] < MIN_PER_CLASS:
        info["reason"] = f"too few brief runs ({runs['real']} real, {runs['false']} false)"
        return det, info
    w = tuple(float(v) for v in fit_logistic(np.asarray(xs), y, l2=l2))
    best_cfg, best_res = _best_of(curves, fps, det, before, [
        dataclasses.replace(det, instance_verifier=w, verify_threshold=float(thr))
        for thr in VERIFY_THRESHOLDS])
    used = bool(best_cfg.instance_verifier)
    info.update(used=used, result=best_res, threshold=best_cfg.verify_threshold if used else None,
                reason="raised the selection F1" if used else NOT_KEPT)
    return best_cfg, info


def summarize_instance_classifier(info: dict) -> dict:
    """The short record a checkpoint keeps of a fit (selection F1 with and without it)."""
    def f1s(res: dict) -> dict:
        return {k: round(float(res[k]["f1"]), 4) for k in ("overall", "macro", "micro")}

    out = {"used": info["used"], "reason": info["reason"], "runs": info["runs"],
           "features": info["features"], "l2": info["l2"], "f1_without": f1s(info["before"]),
           "f1_with": f1s(info["result"])}
    if "micro_limit" in info:
        out["micro_limit"] = info["micro_limit"]
    if "verifier" in info:
        v = info["verifier"]
        out["verifier"] = {"used": v["used"], "reason": v["reason"], "runs": v["runs"],
                           "threshold": v["threshold"]}
    return out


def describe(summary: dict, label: str = "selection F1") -> str:
    """One line for the console from :func:`summarize_instance_classifier`'s record; ``label``
    names the data the F1 was measured on."""
    text = f"instance classifier {'kept' if summary['used'] else 'not kept'} ({summary['reason']})"
    v = summary.get("verifier")
    if v is not None:
        text += (f", verifier kept at {v['threshold']:g} ({v['reason']})" if v["used"]
                 else f", verifier not kept ({v['reason']})")
    m = summary.get("micro_limit")
    if m is not None:
        text += f", micro limit {m['chosen']:g} s (tried {', '.join(f'{t:g}' for t in m['tried'])})"
    return (f"{text}: {label} {summary['f1_without']['overall']:.3f} without, "
            f"{summary['f1_with']['overall']:.3f} with")
