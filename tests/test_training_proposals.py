"""Offline proposals from known intensity curves."""

from __future__ import annotations

import numpy as np

from training.evaluate import Interval
from training.proposals import ProposalConfig, hard_nms, offline_proposals, soft_nms


def _curve():
    t = 300
    a = np.full(t, 0.05)
    a[50:90] = 0.9  # macro, 40 frames
    a[200:212] = 0.7  # micro, 12 frames
    apex = np.zeros((t, 2))
    apex[50:90, 0] = 0.9
    apex[200:212, 1] = 0.9
    return a, apex


def test_finds_macro_and_micro_with_exact_bounds():
    a, apex = _curve()
    props = offline_proposals(a, apex)
    kinds = {(p.kind, p.onset, p.offset) for p in props}
    assert ("macro", 50, 89) in kinds
    assert ("micro", 200, 211) in kinds
    assert len([p for p in props if p.kind == "micro"]) == 1


def test_class_gate_and_duration_filters():
    a, apex = _curve()
    apex[200:212, 1] = 0.3  # classifier says no micro
    props = offline_proposals(a, apex)
    assert not [p for p in props if p.kind == "micro"]
    a2 = np.full(300, 0.05)
    a2[10:14] = 0.9  # 4 frames: too short for either class
    ap2 = np.full((300, 2), 0.9)
    assert offline_proposals(a2, ap2) == []


def test_cap_per_class_and_score_floor():
    t = 2000
    a = np.full(t, 0.05)
    apex = np.zeros((t, 2))
    for i in range(12):
        a[100 + 150 * i : 140 + 150 * i] = 0.5 + 0.03 * i
        apex[100 + 150 * i : 140 + 150 * i, 0] = 0.9
    props = offline_proposals(a, apex)
    assert len(props) == 8
    assert min(p.score for p in props) >= ProposalConfig().score_floor
    assert offline_proposals(a, apex, cfg=ProposalConfig(score_floor=5.0)) == []


def test_nms_helpers():
    ps = [Interval(0, 9, "macro", 0.9), Interval(1, 10, "macro", 0.8), Interval(50, 60, "macro", 0.5)]
    assert [p.onset for p in hard_nms(ps, 0.5)] == [0, 50]
    s = soft_nms(ps, 0.3)
    assert s[0].score == 0.9 and s[-1].score < 0.8  # the overlapping one decayed
