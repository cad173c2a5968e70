"""The detector's instance classifier and verifier: what they read, how they are fitted, and
that each is kept only when it helps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibration.instance_classifier import (
    describe,
    fit_instance_classifier,
    fit_logistic,
    micro_limits_for,
    summarize_instance_classifier,
)
from calibration.operating_point import Curve, score_operating_point
from engine.detector import INSTANCE_FEATURES, DetectorConfig, detect, instance_features
from pfes.errors import InputError
from training.evaluate import Interval

FPS = 30.0


def _build(n_videos: int, seed: int, length: int, apex_p: tuple[float, float], draw) -> list[Curve]:
    """Videos of ``length`` frames with flat runs drawn by ``draw(rng) -> (frames, level, kind)``
    (kind None: an unlabelled run), 40-69 frames apart, and constant apex sigmoids."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_videos):
        a = np.zeros(length, np.float32)
        apex = np.tile(np.float32(apex_p), (length, 1))
        truth = []
        s = 30
        while s < length - 80:
            d, level, kind = draw(rng)
            a[s:s + d] = level
            if kind is not None:
                truth.append(Interval(s, s + d - 1, kind, apex=s + d // 2))
            s += d + int(rng.integers(40, 70))
        out.append(Curve(f"v{k}", a, apex, np.ones(length, bool), truth))
    return out


def _curves(n_videos: int = 4, seed: int = 0) -> list[Curve]:
    """Micro-expressions (8-12 frames, intensity 0.7) and short macro-expressions (14-16 frames,
    intensity 1.0) with the *same* apex sigmoids: only the run tells them apart."""
    def draw(rng):
        if rng.random() < 0.5:
            return int(rng.integers(8, 13)), 0.7, "micro"
        return int(rng.integers(14, 17)), 1.0, "macro"

    return _build(n_videos, seed, 1200, (0.7, 0.6), draw)


BASE = DetectorConfig(open_threshold=0.5, close_threshold=0.3, micro_prob_threshold=0.5)


def test_logistic_fit_separates_and_is_deterministic():
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(3, 1, (50, 2))] * (1.0, 100.0)  # unequal scales
    y = np.r_[np.zeros(50), np.ones(50)]
    w = fit_logistic(x, y)
    assert w.shape == (3,)
    pred = (x @ w[:2] + w[2]) > 0
    assert (pred == y).mean() > 0.9
    assert np.array_equal(w, fit_logistic(x, y))


def test_classifier_tells_micro_from_short_macro_where_the_apex_branch_cannot():
    curves = _curves()
    before = score_operating_point(curves, BASE, FPS)
    assert before["macro"]["tp"] == 0  # every brief run is called micro: p_micro 0.6 >= 0.5
    det, info = fit_instance_classifier(curves, FPS, BASE)
    assert info["used"] and len(det.instance_classifier) == len(INSTANCE_FEATURES) + 1
    assert info["runs"]["micro"] >= 5 and info["runs"]["macro"] >= 5
    after = score_operating_point(curves, det, FPS)
    assert after["overall"]["f1"] > before["overall"]["f1"] + 0.3
    assert after == info["result"]
    # and it carries over to videos it was not fitted on
    held = _curves(2, seed=7)
    assert (score_operating_point(held, det, FPS)["overall"]["f1"]
            > score_operating_point(held, BASE, FPS)["overall"]["f1"] + 0.3)
    rec = summarize_instance_classifier(info)
    assert rec["used"] and rec["f1_with"]["overall"] > rec["f1_without"]["overall"]


def test_classifier_not_kept_without_enough_brief_runs():
    curves = _curves(1)
    for c in curves:  # keep two instances only
        c.truth = c.truth[:2]
        cut = c.truth[-1].offset + 5
        c.intensity[cut:] = 0.0
    det, info = fit_instance_classifier(curves, FPS, BASE)
    assert not info["used"] and det.instance_classifier == () and "too few" in info["reason"]


def test_detector_uses_the_classifier_for_brief_runs_only():
    a = np.zeros(200, np.float32)
    a[20:30] = 0.9  # 10 frames: brief
    a[80:140] = 0.9  # 60 frames: longer than the micro limit
    apex = np.tile(np.float32((0.2, 0.9)), (200, 1))  # the apex branch says "micro" everywhere
    # weights: only the mean intensity counts, and it says "macro" (logit 5 - 10 x 0.9 < 0)
    w = [0.0] * len(INSTANCE_FEATURES) + [5.0]
    w[INSTANCE_FEATURES.index("mean_intensity")] = -10.0
    cfg = dataclasses.replace(BASE, instance_classifier=tuple(w))
    insts = detect(a, apex, None, cfg, FPS)
    assert [i.kind for i in insts] == ["macro", "macro"]
    q = 1 / (1 + np.exp(-(5.0 - 9.0)))
    assert insts[0].class_prob == pytest.approx(1 - q)  # brief run: the classifier's probability
    assert insts[1].class_prob == pytest.approx(0.2)  # long run: the apex branch's macro sigmoid
    w[-1] = 10.0  # now 10 - 9 > 0: micro
    insts = detect(a, apex, None, dataclasses.replace(cfg, instance_classifier=tuple(w)), FPS)
    assert [i.kind for i in insts] == ["micro", "macro"]
    plain = detect(a, apex, None, BASE, FPS)
    assert [i.kind for i in plain] == ["micro", "macro"]


def test_instance_features_in_documented_order():
    f = instance_features(np.array([0.5, 1.0]), np.array([[0.1, 0.2], [0.3, 0.6]]), 0.3, 0.6, 30.0)
    assert f.tolist() == pytest.approx([0.6, 0.3, 2 / 30, 0.75, 0.6, 0.4, 0.2])


def test_config_checks_and_round_trip():
    w = tuple(float(i) for i in range(len(INSTANCE_FEATURES) + 1))
    cfg = dataclasses.replace(BASE, instance_classifier=w, instance_threshold=0.4)
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="instance_classifier"):
        DetectorConfig(instance_classifier=(1.0, 2.0))
    with pytest.raises(InputError, match="instance_classifier"):
        DetectorConfig(instance_classifier=(float("nan"),) * (len(INSTANCE_FEATURES) + 1))
    with pytest.raises(InputError, match="instance_threshold"):
        DetectorConfig(instance_threshold=1.5)
    # checkpoints written before the classifier existed load unchanged
    old = BASE.to_dict()
    del old["instance_classifier"], old["instance_threshold"]
    assert DetectorConfig.from_dict(old) == BASE


def _curves_with_false_runs(n_videos: int = 4, seed: int = 0) -> list[Curve]:
    """Labelled micro-expressions (8-12 frames, intensity 0.9) between unlabelled brief bumps
    (6-10 frames, intensity 0.6, e.g. fidgets): both pass the thresholds, only the run's
    level tells them apart."""
    def draw(rng):
        if rng.random() < 0.5:
            return int(rng.integers(8, 13)), 0.9, "micro"
        return int(rng.integers(6, 11)), 0.6, None

    return _build(n_videos, seed, 1500, (0.2, 0.8), draw)


def test_verifier_drops_false_brief_runs_and_is_kept_only_when_it_helps():
    curves = _curves_with_false_runs()
    before = score_operating_point(curves, BASE, FPS)
    assert before["micro"]["fp"] >= 10 and before["micro"]["recall"] == 1.0
    det, info = fit_instance_classifier(curves, FPS, BASE)
    v = info["verifier"]
    assert v["used"] and len(det.instance_verifier) == len(INSTANCE_FEATURES) + 1
    assert v["runs"]["false"] >= 10 and v["runs"]["real"] >= 10
    after = score_operating_point(curves, det, FPS)
    assert after == info["result"] and after["micro"]["fp"] == 0 and after["micro"]["recall"] == 1.0
    held = _curves_with_false_runs(2, seed=5)  # carries over to videos it was not fitted on
    assert score_operating_point(held, det, FPS)["micro"]["f1"] == 1.0
    assert score_operating_point(held, BASE, FPS)["micro"]["f1"] < 0.85
    rec = summarize_instance_classifier(info)
    assert rec["verifier"]["used"] and rec["verifier"]["threshold"] == det.verify_threshold
    assert "verifier kept" in describe(rec)
    # off on request, and refused where every brief run is real (nothing to gain)
    det_off, info_off = fit_instance_classifier(curves, FPS, BASE, verifier=False)
    assert det_off.instance_verifier == () and "verifier" not in info_off
    clean = _curves()  # no false alarms: fewer than MIN_PER_CLASS false runs
    det2, info2 = fit_instance_classifier(clean, FPS, BASE)
    assert not info2["verifier"]["used"] and det2.instance_verifier == ()
    assert "too few" in info2["verifier"]["reason"]


def test_verifier_may_not_buy_overall_f1_with_micro_expressions():
    # Micro-expressions and unlabelled bumps alike in every run feature, among many long
    # macro-expressions: dropping every brief run raises the overall F1 (the macro-expressions
    # dominate it) but loses every micro-expression, so the verifier is refused.
    def draw(rng):
        r = rng.random()
        if r < 0.5:
            return int(rng.integers(40, 61)), 0.9, "macro"
        return int(rng.integers(8, 13)), 0.7, ("micro" if r < 0.65 else None)

    curves = _build(4, 3, 3000, (0.2, 0.8), draw)
    before = score_operating_point(curves, BASE, FPS)
    drop_all = dataclasses.replace(BASE, instance_verifier=(0.0,) * len(INSTANCE_FEATURES) + (-50.0,))
    after = score_operating_point(curves, drop_all, FPS)
    assert after["overall"]["f1"] > before["overall"]["f1"] and after["micro"]["f1"] == 0.0
    assert before["micro"]["tp"] >= 10 and before["micro"]["fp"] >= 10
    det, info = fit_instance_classifier(curves, FPS, BASE)
    v = info["verifier"]
    assert v["runs"]["real"] >= 10 and v["runs"]["false"] >= 10  # enough to fit: refused on merit
    assert not v["used"] and det.instance_verifier == () and "micro" in v["reason"]
    assert info["result"]["micro"]["f1"] == before["micro"]["f1"]


def _lookahead_curves(micro_frames: tuple[int, int], brief_macro: bool) -> list[Curve]:
    """Long macro-expressions and micro-expressions of ``micro_frames`` frames (both ends
    included); with ``brief_macro`` also 18-20-frame macro-expressions."""
    def draw(rng):
        r = rng.random()
        if r < 0.5:
            return int(rng.integers(40, 61)), 0.9, "macro"
        if brief_macro and r < 0.7:
            return int(rng.integers(18, 21)), 0.9, "macro"
        return int(rng.integers(micro_frames[0], micro_frames[1] + 1)), 0.7, "micro"

    return _build(4, 5, 3000, (0.2, 0.8), draw)


def test_longer_micro_limit_is_kept_only_where_it_helps():
    assert micro_limits_for(0) == () and micro_limits_for(8)
    assert all(lim > BASE.micro_max_duration_s for lim in micro_limits_for(16))
    # micro-expressions of 18-20 frames (0.60-0.67 s, as a look-ahead model's runs): past the
    # 0.55 s limit they are called macro; at 0.7 s they are brief and the apex branch calls
    # them micro
    long_micro = _lookahead_curves((18, 20), brief_macro=False)
    det, info = fit_instance_classifier(long_micro, FPS, BASE, micro_limits=(0.7,))
    assert info["micro_limit"] == {"tried": [0.55, 0.7], "chosen": 0.7}
    assert det.micro_max_duration_s == 0.7
    assert info["result"]["micro"]["f1"] > score_operating_point(long_micro, BASE, FPS)["micro"]["f1"] + 0.5
    assert describe(summarize_instance_classifier(info)).count("micro limit 0.7 s (tried 0.55, 0.7)") == 1
    # short micro-expressions and brief macro-expressions: the classifier tells them apart at
    # either limit, so the longer one gains nothing and the base limit stays (a tie is no gain)
    short_micro = _lookahead_curves((8, 12), brief_macro=True)
    det, info = fit_instance_classifier(short_micro, FPS, BASE, micro_limits=(0.7,))
    assert info["micro_limit"]["chosen"] == 0.55 and det.micro_max_duration_s == 0.55
    # without candidates the fit is the plain one (no record)
    det2, info2 = fit_instance_classifier(short_micro, FPS, BASE)
    assert "micro_limit" not in info2 and det2 == det


def test_calibrating_again_judges_a_longer_limit_against_the_base_one():
    # a checkpoint that chose 0.7 s before (as a look-ahead model's may) is fitted again: the
    # base limit (0.55 s) is tried again and wins where the longer one gains nothing
    short_micro = _lookahead_curves((8, 12), brief_macro=True)
    chosen_before = dataclasses.replace(BASE, micro_max_duration_s=0.7)
    det, info = fit_instance_classifier(short_micro, FPS, chosen_before, micro_limits=(0.7,))
    assert info["micro_limit"] == {"tried": [0.55, 0.7], "chosen": 0.55}
    assert det.micro_max_duration_s == 0.55
    # and where the longer limit still helps, it is chosen again
    long_micro = _lookahead_curves((18, 20), brief_macro=False)
    det, info = fit_instance_classifier(long_micro, FPS, chosen_before, micro_limits=(0.7,))
    assert info["micro_limit"] == {"tried": [0.55, 0.7], "chosen": 0.7}
    # a limit set by hand, longer than every candidate, is one of the candidates too
    hand = dataclasses.replace(BASE, micro_max_duration_s=0.8)
    det, info = fit_instance_classifier(short_micro, FPS, hand, micro_limits=(0.7,))
    assert info["micro_limit"]["tried"] == [0.55, 0.7, 0.8]


def test_detector_verifier_judges_brief_runs_only():
    a = np.zeros(200, np.float32)
    a[20:30] = 0.6  # brief, low
    a[50:60] = 0.9  # brief, high
    a[80:140] = 0.6  # longer than the micro limit, low
    apex = np.tile(np.float32((0.2, 0.9)), (200, 1))
    v = [0.0] * len(INSTANCE_FEATURES) + [-7.5]  # logit 10 x mean - 7.5: 0.6 -> 0.18, 0.9 -> 0.82
    v[INSTANCE_FEATURES.index("mean_intensity")] = 10.0
    cfg = dataclasses.replace(BASE, instance_verifier=tuple(v), verify_threshold=0.5)
    assert [i.onset for i in detect(a, apex, None, cfg, FPS)] == [50, 80]
    assert [i.onset for i in detect(a, apex, None, BASE, FPS)] == [20, 50, 80]
    assert [i.onset for i in detect(a, apex, None, dataclasses.replace(cfg, verify_threshold=0.1),
                                    FPS)] == [20, 50, 80]


def test_verifier_config_checks_and_round_trip():
    w = tuple(float(i) for i in range(len(INSTANCE_FEATURES) + 1))
    cfg = dataclasses.replace(BASE, instance_verifier=w, verify_threshold=0.6)
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="instance_verifier"):
        DetectorConfig(instance_verifier=(1.0,))
    with pytest.raises(InputError, match="verify_threshold"):
        DetectorConfig(verify_threshold=-0.1)
    old = BASE.to_dict()  # checkpoints written before the verifier existed load unchanged
    del old["instance_verifier"], old["verify_threshold"]
    assert DetectorConfig.from_dict(old) == BASE
