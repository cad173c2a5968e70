"""MEGC evaluator on hand-computed examples."""

from __future__ import annotations

import pytest

from training.evaluate import Interval, evaluate, iou


def I(a, b, k="macro", s=1.0):  # noqa: E743
    return Interval(a, b, k, s)


def test_iou_inclusive_frames():
    assert iou(0, 9, 0, 9) == 1.0
    assert iou(0, 9, 10, 19) == 0.0  # touching, no shared frame
    assert iou(0, 9, 9, 18) == pytest.approx(1 / 19)
    assert iou(0, 9, 5, 14) == pytest.approx(5 / 15)


def test_hand_computed_pooling():
    truth = {"v1": [I(0, 9), I(30, 39), I(60, 65, "micro")], "v2": [I(100, 119)]}
    preds = {
        "v1": [I(1, 10, s=0.9), I(2, 9, s=0.8), I(61, 66, "micro", 0.7), I(200, 210, s=0.1)],
        "v2": [I(100, 120, s=0.5), I(100, 119, "micro", 0.4)],
    }
    r = evaluate(preds, truth)
    # macro: v1 TP (1-10), duplicate FP (2-9), FP (200-210); v2 TP. N=3 macro
    assert (r["macro"]["tp"], r["macro"]["fp"], r["macro"]["n"]) == (2, 2, 3)
    # micro: v1 61-66 vs 60-65: inter 5, union 7 -> 0.714 TP; v2 micro FP (wrong class)
    assert (r["micro"]["tp"], r["micro"]["fp"], r["micro"]["n"]) == (1, 1, 1)
    assert r["overall"]["f1"] == pytest.approx(2 * 3 / (3 + 3 + 4))
    assert r["macro"]["precision"] == pytest.approx(0.5)
    assert r["macro"]["recall"] == pytest.approx(2 / 3)


def test_duplicates_match_once_in_score_order():
    truth = {"v": [I(0, 9)]}
    r = evaluate({"v": [I(0, 9, s=0.2), I(0, 9, s=0.9)]}, truth)
    assert (r["macro"]["tp"], r["macro"]["fp"]) == (1, 1)


def test_iou_threshold_boundary():
    # [0, 9] vs [0, 19]: 10 / 20 = 0.5 exactly -> TP; [0, 9] vs [0, 20]: 10/21 < 0.5 -> FP
    assert evaluate({"v": [I(0, 9)]}, {"v": [I(0, 19)]})["macro"]["tp"] == 1
    assert evaluate({"v": [I(0, 9)]}, {"v": [I(0, 20)]})["macro"]["tp"] == 0


def test_empty_predictions_and_empty_truth():
    r = evaluate({}, {"v": [I(0, 9), I(20, 25, "micro")]})
    assert r["overall"] == {"tp": 0, "fp": 0, "n": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    r = evaluate({"v": [I(0, 9)]}, {})
    assert (r["overall"]["fp"], r["overall"]["n"], r["overall"]["f1"]) == (1, 0, 0.0)
    r = evaluate({}, {})
    assert r["overall"]["f1"] == 0.0


def test_touching_intervals_are_distinct_ground_truths():
    truth = {"v": [I(0, 9), I(10, 19)]}
    r = evaluate({"v": [I(0, 9, s=0.5), I(10, 19, s=0.6)]}, truth)
    assert (r["macro"]["tp"], r["macro"]["fp"]) == (2, 0)
    # one prediction spanning both matches at most one (IoU 0.5 with each)
    r = evaluate({"v": [I(0, 19)]}, truth)
    assert (r["macro"]["tp"], r["macro"]["fp"], r["macro"]["n"]) == (1, 0, 2)
