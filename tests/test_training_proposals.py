"""Offline proposals from known intensity curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.evaluate import Interval, iou
from training.proposals import (
    PROPOSAL_PRESETS,
    ProposalConfig,
    hard_nms,
    offline_proposals,
    soft_nms,
)


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
    assert min(p.score for p in props) >= max(ProposalConfig().score_floors)
    assert offline_proposals(a, apex, cfg=ProposalConfig(score_floors=(5.0, 5.0))) == []


def test_nms_helpers():
    ps = [Interval(0, 9, "macro", 0.9), Interval(1, 10, "macro", 0.8), Interval(50, 60, "macro", 0.5)]
    assert [p.onset for p in hard_nms(ps, 0.5)] == [0, 50]
    s = soft_nms(ps, 0.3)
    assert s[0].score == 0.9 and s[-1].score < 0.8  # the overlapping one decayed


def test_soft_nms_decay_by_hand():
    # [0, 9] and [2, 11]: 8 shared frames of 12 -> IoU 2/3; decay exp(-(2/3)^2 / 0.3) = 0.2273
    ps = [Interval(0, 9, "macro", 0.9), Interval(2, 11, "macro", 0.8)]
    s = soft_nms(ps, 0.3)
    assert s[1].score == pytest.approx(0.8 * math.exp(-(4 / 9) / 0.3))
    assert s[1].score == pytest.approx(0.18184, abs=1e-5)


def _reference_final_nms_as_released(props, thr=0.5):
    """The reference's final NMS loop, reproduced to show its flaw: after deleting the
    candidate at index i it moves on to i + 1, so the candidate that slid into i is never
    compared with the pick."""
    rest = sorted(props, key=lambda p: -p.score)  # any order shows it; this one is simple
    kept = []
    while rest:
        k = max(range(len(rest)), key=lambda i: rest[i].score)
        best = rest.pop(k)
        kept.append(best)
        i = 0
        while i < len(rest):
            q = rest[i]
            if iou(best.onset, best.offset, q.onset, q.offset) > thr:
                del rest[i]
            i += 1  # the flaw: the next candidate now sits at i - 1 and is skipped
    return kept


def test_final_nms_removes_every_duplicate_where_the_released_loop_keeps_one():
    a = Interval(0, 20, "macro", 0.9)
    b = Interval(1, 21, "macro", 0.8)  # IoU with a: 20/22
    c = Interval(2, 22, "macro", 0.7)  # IoU with a: 19/23, still > 0.5
    far = Interval(100, 120, "macro", 0.6)
    buggy = _reference_final_nms_as_released([a, b, c, far])
    assert [p.onset for p in buggy] == [0, 2, 100]  # c survived next to a
    assert [p.onset for p in hard_nms([a, b, c, far], 0.5, strict=True)] == [0, 100]


def test_reference_presets_floors_and_exclusive_end_durations():
    assert PROPOSAL_PRESETS["casme2"].score_floors == (0.5, 0.5)
    assert PROPOSAL_PRESETS["samm-lv"].score_floors == (0.4, 0.3)
    assert PROPOSAL_PRESETS["samm-lv"].max_per_video == (8, 8)
    assert PROPOSAL_PRESETS["casme3"].score_floors == (0.3, 0.3)
    assert PROPOSAL_PRESETS["pfes"] == ProposalConfig()
    # a clean 15-frame micro run: within 9-15 counted inclusively, 16 > 15 with the exclusive end
    t = 200
    for n, ours, ref in ((15, True, False), (14, True, True), (8, False, True)):
        a = np.full(t, 0.02)
        a[100 : 100 + n] = 0.95
        apex = np.zeros((t, 2))
        apex[100 : 100 + n, 1] = 0.95
        got_ours = [p for p in offline_proposals(a, apex) if p.kind == "micro"]
        got_ref = [p for p in offline_proposals(a, apex, cfg=PROPOSAL_PRESETS["casme3"]) if p.kind == "micro"]
        assert bool(got_ours) == ours and bool(got_ref) == ref, n
        for p in got_ours + got_ref:
            assert (p.onset, p.offset) == (100, 99 + n)


def test_reference_score_floor_is_per_class():
    a, apex = _curve()  # micro run at 0.7 scores about 0.7 - 0.05 + 0.18 = 0.83
    props = offline_proposals(a, apex, cfg=ProposalConfig(score_floors=(0.3, 0.9)))
    assert {p.kind for p in props} == {"macro"}
