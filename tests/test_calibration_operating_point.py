"""Operating-point search: the threshold grid, and the final grid's bridging and widening."""

from __future__ import annotations

import numpy as np

from calibration.operating_point import (
    DEFAULT_GRID,
    FINAL_GRID,
    Curve,
    fit_operating_point,
    score_operating_point,
)
from engine.detector import DetectorConfig
from training.evaluate import Interval


def _curves() -> list[Curve]:
    """Macro expressions whose intensity sags in the middle (a 10-frame dip below 0.2)."""
    out = []
    for k in range(3):
        t = 400
        a = np.zeros(t, np.float32)
        truth = []
        for s in (40, 200):
            a[s:s + 30] = 0.8
            a[s + 30:s + 40] = 0.05
            a[s + 40:s + 90] = 0.8
            truth.append(Interval(s, s + 89, "macro", apex=s + 10))
        apex = np.tile(np.float32((0.9, 0.05)), (t, 1))
        out.append(Curve(f"v{k}", a, apex, np.ones(t, bool), truth))
    return out


def test_final_grid_bridges_dips_that_split_expressions():
    curves = _curves()
    plain, info = fit_operating_point(curves, 30.0, grid=DEFAULT_GRID)
    assert plain.merge_gap_s == 0.0 and info["result"]["overall"]["f1"] < 0.7  # split in two
    final, info = fit_operating_point(curves, 30.0, grid=FINAL_GRID)
    assert final.merge_gap_s >= 0.33  # the smallest bridge that spans the 10-frame dip
    assert info["result"]["overall"]["f1"] == 1.0
    assert final.pad_to_s == 0.0  # ties go to no widening
    assert score_operating_point(curves, final, 30.0)["overall"]["f1"] == 1.0


def test_grid_without_new_keys_keeps_the_base_values():
    base = DetectorConfig(merge_gap_s=0.2, pad_to_s=0.3)
    cfg, _ = fit_operating_point(_curves(), 30.0, base=base, grid=DEFAULT_GRID)
    assert cfg.merge_gap_s == 0.2 and cfg.pad_to_s == 0.3


def test_fast_search_equals_running_the_detector_at_each_point():
    """The search reshapes one detector pass per run setting; scoring each chosen point with
    the detector itself gives the same result."""
    rng = np.random.default_rng(3)
    curves = []
    for k in range(4):
        t = 600
        a = np.clip(np.convolve(rng.random(t), np.ones(15) / 15, mode="same") * 2.2 - 0.7, 0, 1)
        apex = rng.random((t, 2)).astype(np.float32)
        truth = [Interval(s, s + int(rng.integers(8, 60)), str(rng.choice(["macro", "micro"])))
                 for s in range(20, 560, 90)]
        curves.append(Curve(f"r{k}", a.astype(np.float32), apex, rng.random(t) > 0.03, truth))
    small = {"open_threshold": (0.4, 0.6), "close_ratio": (0.5,), "micro_prob_threshold": (0.5,),
             "merge_gap_s": (0.0, 0.2), "pad_to_s": (0.0, 0.33), "offset_extend": (0.0, 0.5)}
    import dataclasses
    import itertools

    for op, gap, pad, ext in itertools.product((0.4, 0.6), (0.0, 0.2), (0.0, 0.33), (0.0, 0.5)):
        grid = {**small, "open_threshold": (op,), "merge_gap_s": (gap,), "pad_to_s": (pad,),
                "offset_extend": (ext,)}
        cfg, info = fit_operating_point(curves, 30.0, grid=grid, classify_at=("apex",))
        direct = score_operating_point(curves, cfg, 30.0)
        assert info["result"] == direct
        assert dataclasses.astuple(cfg)[:2] == (op, round(op * 0.5, 4))
