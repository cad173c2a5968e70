"""Operating point: fit the peak detector's thresholds for best F1 on labelled curves.

The trainer calls this on its inner validation subjects (never on held-out subjects) and
stores the result in the checkpoint; ``pfes calibrate`` refits it on any labelled dataset.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.detector import DetectorConfig, detect, reshape
from training.evaluate import Interval, evaluate, to_intervals

__all__ = ["Curve", "fit_operating_point", "score_operating_point", "DEFAULT_GRID", "FINAL_GRID",
           "SELECTION_GRID"]

#: searched at every selection epoch during training (120 points with both classify_at)
DEFAULT_GRID: dict[str, tuple] = {
    "open_threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
    "close_ratio": (0.4, 0.6, 0.8),  # close_threshold = close_ratio x open_threshold
    "micro_prob_threshold": (0.3, 0.5, 0.7, 0.9),
}
#: searched once for the chosen weights (end of training, ``pfes calibrate``): adds bridging
#: of short dips (seconds; delays an instance's emission by up to that long, so capped at
#: 0.5 s for a live spotter), widening of brief runs (seconds) and the macro offset
#: extension (fraction of the run). Ties go to the earlier point: none of the three.
FINAL_GRID: dict[str, tuple] = {
    **DEFAULT_GRID,
    "merge_gap_s": (0.0, 0.2, 0.33, 0.5),
    "pad_to_s": (0.0, 0.33),
    "offset_extend": (0.0, 0.25, 0.5),
}

#: searched at every selection epoch when the trainer selects by the whole pipeline
#: (``TrainConfig.selection="pipeline"``): the final grid's two parts that matter most at about
#: twice the cost of the default grid (on one model's development curves it reached the
#: final grid's F1 in 23 s against 52 s)
SELECTION_GRID: dict[str, tuple] = {
    **DEFAULT_GRID,
    "merge_gap_s": (0.0, 0.33),
    "offset_extend": (0.0, 0.5),
}


@dataclass
class Curve:
    """Network outputs and truth for one video: intensity (T,), apex (T, 2), valid (T,)."""

    name: str
    intensity: np.ndarray
    apex: np.ndarray
    valid: np.ndarray
    truth: list[Interval]


def score_operating_point(curves: Sequence[Curve], cfg: DetectorConfig, fps: float) -> dict:
    """MEGC result of the detector at ``cfg`` over ``curves``."""
    preds = {c.name: to_intervals(detect(c.intensity, c.apex, c.valid, cfg, fps)) for c in curves}
    return evaluate(preds, {c.name: c.truth for c in curves})


def fit_operating_point(
    curves: Sequence[Curve],
    fps: float,
    base: DetectorConfig | None = None,
    grid: dict[str, tuple] | None = None,
    classify_at: Sequence[str] = ("apex", "close"),
) -> tuple[DetectorConfig, dict]:
    """Grid search for the best overall F1 (ties: higher micro F1, then the earlier grid point).

    Returns the best config and ``{"result": MEGC dict, "searched": n}``.
    """
    base = base or DetectorConfig()
    grid = grid or DEFAULT_GRID
    best: tuple | None = None
    n = 0
    pads = grid.get("pad_to_s", (base.pad_to_s,))
    exts = grid.get("offset_extend", (base.offset_extend,))
    truth = {c.name: c.truth for c in curves}
    for op, cr, mp, ca, gap in itertools.product(
        grid["open_threshold"], grid["close_ratio"], grid["micro_prob_threshold"], classify_at,
        grid.get("merge_gap_s", (base.merge_gap_s,)),
    ):
        run_cfg = dataclasses.replace(
            base,
            open_threshold=float(op),
            close_threshold=float(np.round(op * cr, 4)),
            micro_prob_threshold=float(mp),
            classify_at=ca,
            merge_gap_s=float(gap),
            pad_to_s=0.0,
            offset_extend=0.0,
        )
        # one detector pass; widening and offset extension only reshape its instances
        raw = {c.name: detect(c.intensity, c.apex, c.valid, run_cfg, fps) for c in curves}
        for pad, ext in itertools.product(pads, exts):
            cfg = dataclasses.replace(run_cfg, pad_to_s=float(pad), offset_extend=float(ext))
            pad_frames = int(round(cfg.pad_to_s * fps))
            preds = {
                name: to_intervals(reshape(i, pad_frames, cfg.offset_extend) for i in insts)
                for name, insts in raw.items()
            }
            res = evaluate(preds, truth)
            n += 1
            key = (res["overall"]["f1"], res["micro"]["f1"])
            if best is None or key > best[0]:
                best = (key, cfg, res)
    if best is None:
        raise ValueError("fit_operating_point: empty grid")
    return best[1], {"result": best[2], "searched": n}
