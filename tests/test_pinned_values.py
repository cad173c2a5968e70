"""Exact values at boundaries, each worked out by hand in the comments.

Direction-only tests ("the score is positive", "there are fewer false positives") pass on
plausible one-line slips; these pin the number or the boundary case each slip would change:
the micro length limit, the score's before-onset band, MEGC matching order, the reconnect
backoff, GIM's Gaussian, the contrastive denominator and soft-NMS decay.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from engine.detector import INSTANCE_FEATURES, DetectorConfig, detect
from pfes.errors import SourceError
from stream.source_live import LiveSource
from training.evaluate import Interval, evaluate, match_video
from training.gim import _gauss
from training.losses import LossWeights, iac_loss
from training.proposals import soft_nms

FPS = 30.0


# -- detector: micro length limit -------------------------------------------------------------
def _two_runs(p_macro: float, p_micro: float) -> tuple[np.ndarray, np.ndarray]:
    """A 15-frame run (frames 10-24) and a 16-frame run (frames 50-65), apex sigmoids fixed."""
    a = np.zeros(100)
    a[10:25] = 0.9
    a[50:66] = 0.9
    return a, np.tile([p_macro, p_micro], (100, 1))


def test_run_of_exactly_the_micro_limit_is_micro():
    # micro_max_duration_s 0.5 at 30 fps = 15 frames: 15 frames may be micro, 16 may not
    cfg = DetectorConfig(micro_max_duration_s=0.5)
    out = detect(*_two_runs(0.2, 0.8), cfg=cfg, fps=FPS)
    assert [(i.onset, i.offset, i.kind) for i in out] == [(10, 24, "micro"), (50, 65, "macro")]
    assert [i.class_prob for i in out] == pytest.approx([0.8, 0.2])


def test_run_of_exactly_the_micro_limit_goes_to_the_instance_classifier():
    # the apex branch says macro (p_micro 0.2); a classifier that always says micro
    # (zero weights, bias 5: p = sigmoid(5)) decides runs up to the limit, inclusive
    clf = (0.0,) * len(INSTANCE_FEATURES) + (5.0,)
    cfg = DetectorConfig(micro_max_duration_s=0.5, instance_classifier=clf)
    out = detect(*_two_runs(0.8, 0.2), cfg=cfg, fps=FPS)
    assert [(i.onset, i.offset, i.kind) for i in out] == [(10, 24, "micro"), (50, 65, "macro")]
    assert out[0].class_prob == pytest.approx(1 / (1 + math.exp(-5.0)))
    assert out[1].class_prob == pytest.approx(0.8)


# -- detector: score band ---------------------------------------------------------------------
def _score_curve() -> tuple[np.ndarray, np.ndarray]:
    # frames 0-9: 0.00, 0.03, ..., 0.27 (below close 0.3); run frames 10-19: 0.60, 0.63, ..., 0.87
    a = np.zeros(40)
    a[:10] = 0.03 * np.arange(10)
    a[10:20] = 0.6 + 0.03 * np.arange(10)
    return a, np.tile([0.9, 0.1], (40, 1))


@pytest.mark.parametrize(
    "band_ratio,before_mean",
    [
        (0.2, (0.24 + 0.27) / 2),  # band of round(0.2 x 10) = 2 frames: frames 8, 9
        (0.5, (0.15 + 0.18 + 0.21 + 0.24 + 0.27) / 5),  # 5 frames: frames 5-9
    ],
)
def test_score_uses_the_band_just_before_the_onset(band_ratio, before_mean):
    # score = mean inside (0.735) - mean of the band before the onset + 0.2 x p_macro (0.9)
    out = detect(*_score_curve(), cfg=DetectorConfig(band_ratio=band_ratio), fps=FPS)
    assert [(i.onset, i.offset, i.kind) for i in out] == [(10, 19, "macro")]
    assert out[0].score == pytest.approx(0.735 - before_mean + 0.18, abs=1e-9)


def test_score_band_after_an_earlier_run_counts_that_run():
    # the band before the second run (frames 30-39, 0.9) holds the tail of the first run
    # (frames 10-19 at 0.9) followed by the dip frames 20-29 at 0.1; band = round(0.2*10) = 2
    # frames = 28, 29 -> 0.1; with band_ratio 1.5 -> 15 frames = 15-19 (0.9) and 20-29 (0.1)
    a = np.zeros(50)
    a[10:20] = 0.9
    a[20:30] = 0.1
    a[30:40] = 0.9
    p = np.tile([0.5, 0.0], (50, 1))
    short = detect(a, p, cfg=DetectorConfig(band_ratio=0.2), fps=FPS)
    assert short[1].score == pytest.approx(0.9 - 0.1 + 0.1)
    wide = detect(a, p, cfg=DetectorConfig(band_ratio=1.5), fps=FPS)
    assert wide[1].score == pytest.approx(0.9 - (5 * 0.9 + 10 * 0.1) / 15 + 0.1)


# -- MEGC matching order ----------------------------------------------------------------------
def test_megc_matching_takes_predictions_in_descending_score_order():
    # truth A = [0, 9], B = [2, 11]. P = [0, 10] overlaps both (IoU 10/11 with A, 9/12 with B);
    # Q = [0, 5] only A (IoU 6/10; with B 4/12). Q scores higher, so it is matched first and
    # takes A, then P takes B: 2 TP. Lowest score first, P would take A (its best) and leave Q
    # nothing: 1 TP, 1 FP.
    truth = [Interval(0, 9, "macro"), Interval(2, 11, "macro")]
    preds = [Interval(0, 10, "macro", score=0.5), Interval(0, 5, "macro", score=0.9)]
    assert match_video(preds, truth, "macro") == (2, 0, 2)
    assert match_video(list(reversed(preds)), truth, "macro") == (2, 0, 2)
    res = evaluate({"v": preds}, {"v": truth})
    assert (res["macro"]["tp"], res["macro"]["fp"], res["macro"]["f1"]) == (2, 0, 1.0)
    # swap the scores: now P goes first and Q is a false positive
    swapped = [Interval(0, 10, "macro", score=0.9), Interval(0, 5, "macro", score=0.5)]
    assert match_video(swapped, truth, "macro") == (1, 1, 2)


# -- live source: reconnect backoff -----------------------------------------------------------
class _RecordingStop(threading.Event):
    """A stop event whose waits return at once and are recorded (no real sleeping)."""

    def __init__(self):
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return self.is_set()


class _Flaky(LiveSource):
    """Connection script: 'f' delivers one frame then breaks, 'x' fails at once."""

    def __init__(self, script: str):
        super().__init__("flaky", backoff_initial_s=0.5, backoff_max_s=10.0)
        self.script = list(script)
        self._stop = _RecordingStop()

    def _connect(self):
        if not self.script:
            self._stop.set()
            raise SourceError("script done")
        step = self.script.pop(0)
        if step == "f":
            self.fps = 30.0
            yield (np.zeros((2, 2, 3), np.uint8), lambda a: a, 0.0, 0.0)
        raise SourceError("connection reset")


def test_backoff_doubles_while_failing_and_resets_after_a_frame():
    # f: wait 0.5; x: 1.0; x: 2.0; f (delivers, so the backoff resets): 0.5; x: 1.0; then stop
    cam = _Flaky("fxxfx")
    cam._reader()  # the reader thread's loop, run here
    assert cam._stop.waits == [0.5, 1.0, 2.0, 0.5, 1.0]
    assert cam.reconnects == 5 and cam.decoded == 2


def test_backoff_is_capped():
    cam = _Flaky("f" + "x" * 6)
    cam.backoff_max_s = 4.0
    cam._reader()
    assert cam._stop.waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


# -- training formulas (small hand-computed cases) --------------------------------------------
def test_gim_gaussian_is_exp_minus_d2_over_two_s2():
    # points 0, 1, 2 on a line, centre 0: d^2 = 0, 1, 4, s^2 = mean = 5/3, 2 s^2 = 10/3
    g = np.array([[0.0], [1.0], [2.0]])
    assert _gauss(g, 0, 0, 2) == pytest.approx(np.exp(-np.array([0.0, 1.0, 4.0]) * 0.3))


def test_iac_loss_hand_computed():
    # f: two identical macro frames (intensity 0.8 and 0.4) and an orthogonal neutral frame;
    # tau = 0.5, logits 1/tau = 2 between the macro pair, 0 to the neutral one.
    # anchor 0: positive 1 (weight 1 - 0.4 = 0.6); denominator: positive at weight 1, the
    #   neutral negative at |0.8 - 0| = 0.8 -> loss_0 = log(e^2 + 0.8) - 2 = log(1 + 0.8 e^-2)
    # anchor 1: likewise with the negative at 0.4 -> log(1 + 0.4 e^-2)
    # anchor 2 (neutral) has no positive: left out. Total x tau / base tau = 0.5 / 0.07.
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    cat = torch.tensor([2, 2, 0])
    inten = torch.tensor([0.8, 0.4, 0.0])
    w = LossWeights()
    assert (w.iac_temperature, w.iac_base_temperature) == (0.5, 0.07)
    want = (0.5 / 0.07) * (math.log(1 + 0.8 * math.exp(-2)) + math.log(1 + 0.4 * math.exp(-2))) / 2
    assert float(iac_loss(f, cat, inten, w)) == pytest.approx(want, rel=1e-5)


def test_soft_nms_decay_is_exp_minus_iou2_over_sigma():
    # IoU([0, 9], [5, 14]) = 5 / 15 = 1/3; sigma 0.3: 0.8 x exp(-(1/9) / 0.3)
    kept = soft_nms([Interval(0, 9, "macro", 1.0), Interval(5, 14, "macro", 0.8)], sigma=0.3)
    assert [(p.onset, p.offset) for p in kept] == [(0, 9), (5, 14)]
    assert kept[0].score == 1.0
    assert kept[1].score == pytest.approx(0.8 * math.exp(-(1 / 9) / 0.3))
