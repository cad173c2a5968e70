"""GIM pseudo-labels and the losses on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pfes.errors import InputError
from training.gim import (
    GimConfig,
    Point,
    full_labels,
    gim_labels,
    gim_span,
    hard_labels,
    theta_for_epoch,
)
from training.losses import (
    LossWeights,
    apex_focal_loss,
    apex_targets,
    iac_loss,
    iac_pair_weights,
    intensity_loss,
    reward_term,
    select_negatives,
    smoothness_term,
)
from training.trainer import TrainConfig


def _bump(t, center, width, height=1.0):
    x = np.arange(t)
    return height * np.exp(-0.5 * ((x - center) / width) ** 2)


def test_theta_schedule():
    assert theta_for_epoch(5) == pytest.approx(0.8)
    assert theta_for_epoch(13) == pytest.approx(0.7)
    assert theta_for_epoch(100) == pytest.approx(0.5)


def test_pseudo_apex_is_argmax_and_span_follows_formula():
    a = _bump(200, 103, 6.0)  # frames with a > 0.8 around 103: |x-103| <= 6*sqrt(2 ln 1.25)
    apex, h = gim_span(a, point=98, cls=0, epoch=5)
    assert apex == 103
    n = int(np.sum(a[103 - 16 : 103 + 17] > 0.8))
    assert h == min(36, max(16, round(1.2 * n))) // 2
    # a wide bump saturates at D_max = 36 -> h = 18; micro saturates at 16 -> h = 8
    wide = _bump(200, 100, 40.0)
    assert gim_span(wide, 100, 0, 5)[1] == 18
    assert gim_span(wide, 100, 1, 5)[1] == 8
    # a narrow bump gives the minimum k/2: macro 16 -> h 8
    narrow = _bump(200, 100, 0.5)
    assert gim_span(narrow, 100, 0, 5)[1] == 8


def test_pseudo_apex_search_window_is_quarter_k():
    a = _bump(200, 112, 2.0)  # peak 12 frames after the point: outside +-8 for macro
    apex, _ = gim_span(a, point=100, cls=0, epoch=5)
    assert apex == 108  # best inside [92, 108]


def test_gim_labels_gaussian_in_feature_space():
    t = 120
    a = _bump(t, 60, 5.0)
    g = np.zeros((t, 4), np.float32)
    g[:, 0] = a  # feature distance grows away from the apex
    lab = gim_labels(a, g, [Point(58, 0)], epoch=10)
    apex, h = gim_span(a, 58, 0, 10)
    assert lab.y[apex, 0] == pytest.approx(1.0)
    assert np.all(lab.y[: apex - h, 0] == 0) and np.all(lab.y[apex + h + 1 :, 0] == 0)
    assert np.all(lab.y[apex - h : apex + h + 1, 0] > 0)
    assert np.all(lab.y[:, 1] == 0)
    assert lab.apex_pos[apex - 2 : apex + 3, 0].all() and lab.apex_pos.sum() == 5


def test_warmup_stages_windows():
    t = 50
    g = np.random.default_rng(0).normal(size=(t, 3))
    a = np.zeros(t)
    lab0 = gim_labels(a, g, [Point(20, 0), Point(40, 1)], epoch=0)
    assert np.flatnonzero(lab0.y[:, 0]).tolist() == list(range(15, 25))
    assert np.flatnonzero(lab0.y[:, 1]).tolist() == list(range(37, 43))
    lab1 = gim_labels(a, g, [Point(20, 0), Point(40, 1)], epoch=1)
    assert np.flatnonzero(lab1.y[:, 0]).tolist() == list(range(18, 23))  # d=1: [p-2, p+2]
    assert np.flatnonzero(lab1.y[:, 1]).tolist() == [39, 40, 41]
    lab3 = gim_labels(a, g, [Point(20, 0)], epoch=3)
    assert np.flatnonzero(lab3.y[:, 0]).tolist() == list(range(16, 25))  # d=2: [p-4, p+4]
    assert lab3.y[20, 0] == 1.0


def test_hard_classes_keep_fixed_windows_for_micro_only():
    t = 120
    a = _bump(t, 30, 5.0) + _bump(t, 84, 2.0)
    g = np.zeros((t, 4), np.float32)
    g[:, 0] = a
    pts = [Point(28, 0), Point(80, 1)]
    cfg = GimConfig(hard_classes=(1,))
    lab = gim_labels(a, g, pts, epoch=10, cfg=cfg)
    # micro: the epoch-0 window [p-3, p+3) at label 1 and the apex at the point, not at a's peak
    assert np.flatnonzero(lab.y[:, 1]).tolist() == list(range(77, 83))
    assert np.all(lab.y[77:83, 1] == 1.0)
    assert (80, 1) in lab.apex_hat and np.flatnonzero(lab.apex_pos[:, 1]).tolist() == [79, 80, 81]
    # macro: unchanged GIM (pseudo-apex at the intensity peak)
    ref = gim_labels(a, g, [pts[0]], epoch=10)
    assert np.array_equal(lab.y[:, 0], ref.y[:, 0])
    # and the trainer maps --gim-micro onto it (hard windows for micro points by default)
    assert TrainConfig().gim_config().hard_classes == (1,)
    assert TrainConfig(gim_micro="gim").gim_config().hard_classes == ()
    assert TrainConfig(gim_micro="hard", gim_macro_scale=2).gim_config().hard_classes == (1,)
    with pytest.raises(InputError):
        TrainConfig(gim_micro="soft")


def test_fixed_apex_classes_centre_gim_on_the_point():
    a = _bump(120, 84, 2.0)
    cfg = GimConfig(fixed_apex_classes=(1,))
    assert gim_span(a, 80, 1, 10)[0] == 84  # GIM: the argmax within +-4
    apex, h = gim_span(a, 80, 1, 10, cfg)
    assert apex == 80 and 4 <= h <= 8  # micro span: 9-17 frames
    g = np.zeros((120, 2), np.float32)
    g[:, 0] = a
    lab = gim_labels(a, g, [Point(80, 1)], epoch=10, cfg=cfg)
    assert lab.y[80, 1] == pytest.approx(1.0) and (80, 1) in lab.apex_hat
    assert TrainConfig(gim_micro="point").gim_config().fixed_apex_classes == (1,)


def test_hard_and_full_baselines():
    lab = hard_labels([Point(10, 1)], 30)
    assert np.flatnonzero(lab.y[:, 1]).tolist() == list(range(7, 13))
    lab = full_labels([Point(12, 0, onset=5, apex=14, offset=20)], 30)
    assert np.flatnonzero(lab.y[:, 0]).tolist() == list(range(5, 21))
    assert np.flatnonzero(lab.apex_pos[:, 0]).tolist() == [12, 13, 14, 15, 16]


def test_negatives_balanced_one_to_one_and_lowest():
    rng = np.random.default_rng(0)
    a = rng.random(100)
    expr = np.zeros(100, bool)
    expr[40:52] = True
    valid = np.ones(100, bool)
    valid[:5] = False
    neg = select_negatives(a, expr, valid)
    assert neg.sum() == expr.sum()
    assert not (neg & expr).any() and not neg[:5].any()
    cand = np.flatnonzero(~expr & valid)
    assert a[neg].max() <= np.sort(a[cand])[12 - 1] + 1e-12


def test_hard_negatives_come_from_far_frames_only():
    rng = np.random.default_rng(1)
    a = rng.random(200) * 0.9
    expr = np.zeros(200, bool)
    expr[40:60] = True  # k = 20
    valid = np.ones(200, bool)
    far = np.zeros(200, bool)
    far[120:] = True  # certain background
    a[150:155] = 0.99  # the network's false alarm there
    neg = select_negatives(a, expr, valid, far, hard_fraction=0.25)
    assert neg.sum() == 20 and not (neg & expr).any()
    assert neg[150:155].all()  # the 5 hard ones are the highest far frames
    rest = neg.copy()
    rest[150:155] = False
    cand = np.flatnonzero(~expr & valid & ~neg)
    assert a[rest].max() <= np.sort(a[np.flatnonzero(~expr & valid)])[15 - 1] + 1e-12
    assert cand.size and np.array_equal(select_negatives(a, expr, valid), select_negatives(
        a, expr, valid, far, hard_fraction=0.0))  # 0 = the reference's choice
    none_far = select_negatives(a, expr, valid, np.zeros(200, bool), hard_fraction=0.5)
    assert np.array_equal(none_far, select_negatives(a, expr, valid))


def test_far_from_points_mask():
    from training.gim import Point
    from training.prepare import TrainVideo
    from training.trainer import _far_from_points

    v = TrainVideo("v", "s", np.zeros((100, 3), np.float32), np.ones(100, bool),
                   [Point(30, 0), Point(35, 1)], [])
    far = _far_from_points(v, 10)
    assert not far[20:46].any() and far[:20].all() and far[46:].all()


def test_apex_targets_priority_and_ignore():
    y = np.zeros((40, 2), np.float32)
    y[18:23, 0] = 0.9
    apex_pos = np.zeros((40, 2), bool)
    apex_pos[20, 0] = True
    neg = np.zeros(40, bool)
    neg[0:3] = True
    tgt = apex_targets(y, apex_pos, neg, neighbour=6)
    assert tgt[20, 0] == 1 and tgt[20, 1] == 0  # apex of macro; micro head: near -> 0
    assert tgt[12, 0] == 0 and tgt[28, 0] == 0  # within +-6 of a strong frame
    assert tgt[11, 0] == -1 and tgt[29, 0] == -1  # ignored
    assert (tgt[0:3] == 0).all()


def test_iac_pair_weights_for_each_pair_kind():
    cat = torch.tensor([0, 0, 1, 1, 2, 2])
    inten = torch.tensor([0.0, 0.0, 0.6, 0.9, 0.7, 1.0])
    w, pos = iac_pair_weights(cat, inten)
    assert w[0, 1] == 1 and pos[0, 1]  # neutral-neutral
    assert w[0, 3] == pytest.approx(0.9) and not pos[0, 3]  # neutral vs expression: |dI|
    assert w[2, 3] == pytest.approx(1 - 0.3) and pos[2, 3]  # same class: 1 - |dI|
    assert w[4, 5] == pytest.approx(1 - 0.3) and pos[4, 5]
    assert w[3, 4] == pytest.approx(0.2) and not pos[3, 4]  # macro vs micro: |dI|


def test_iac_loss_prefers_clustered_features():
    cat = torch.tensor([0, 0, 0, 2, 2, 2])
    inten = torch.tensor([0, 0, 0, 0.9, 0.9, 0.9])
    good = torch.tensor([[1.0, 0]] * 3 + [[0, 1.0]] * 3)
    bad = torch.tensor([[1.0, 0], [0, 1.0]] * 3)
    assert iac_loss(good, cat, inten) < iac_loss(bad, cat, inten)
    assert torch.isfinite(iac_loss(good[:1], cat[:1], inten[:1]))


def test_intensity_loss_terms_and_guards():
    a = torch.tensor([0.0, 0.5, 1.0, 0.2])
    y = torch.tensor([[0, 0], [1.0, 0], [0, 1.0], [0, 0]])
    neg = torch.tensor([True, False, False, True])
    assert intensity_loss(a, y, neg).item() == pytest.approx(0.25 + 0.0 + 0.02)
    empty = torch.zeros(4, 2)
    assert intensity_loss(a, empty, torch.zeros(4, dtype=torch.bool)).item() == 0.0
    assert reward_term(a, empty).item() == 0.0  # the reference returns NaN here
    assert reward_term(a, y).item() == pytest.approx(-0.4 * 0.5 - 0.6 * 1.0)
    assert smoothness_term(a).item() == pytest.approx((0.5 + 0.5 + 0.8) / 3)


def test_apex_focal_loss_decreases_toward_targets():
    tgt = torch.tensor([[1.0, 0], [0, -1], [0, 1.0]])
    good = torch.tensor([[0.9, 0.05], [0.1, 0.5], [0.1, 0.9]])
    bad = torch.tensor([[0.1, 0.8], [0.9, 0.5], [0.9, 0.1]])
    assert apex_focal_loss(good, tgt) < apex_focal_loss(bad, tgt)
    # a negative below the smoothing offset costs nothing
    assert apex_focal_loss(torch.tensor([[0.2, 0.2]]), torch.tensor([[0.0, 0.0]])).item() == 0.0
    assert LossWeights().apex_micro == 1.8


def test_default_epochs_depend_on_the_supervision():
    from training.trainer import DEFAULT_EPOCHS

    assert TrainConfig().epochs == DEFAULT_EPOCHS["point"] == 60
    assert TrainConfig(supervision="hard").epochs == TrainConfig(supervision="full").epochs == 40
    assert TrainConfig(supervision="hard", epochs=7).epochs == 7
    assert TrainConfig().to_dict()["epochs"] == 60  # the checkpoint stores the resolved number
    with pytest.raises(InputError):
        TrainConfig(epochs=-1)


def test_default_rate_and_input_scaling_depend_on_the_supervision():
    from training.trainer import DEFAULT_INPUT_SCALING, DEFAULT_LR

    point, hard, full = (TrainConfig(supervision=s) for s in ("point", "hard", "full"))
    assert (point.lr, point.input_scaling) == (DEFAULT_LR["point"], True) == (1e-3, True)
    assert (hard.lr, hard.input_scaling) == (full.lr, full.input_scaling) == (2e-3, False)
    assert DEFAULT_INPUT_SCALING == {"point": True, "hard": False, "full": False}
    # given values win, and the checkpoint stores the resolved ones
    assert TrainConfig(lr=5e-3, input_scaling=False).to_dict()["lr"] == 5e-3
    assert TrainConfig(input_scaling=False).input_scaling is False
    assert TrainConfig(supervision="hard", input_scaling=True).input_scaling is True
    assert TrainConfig().to_dict()["input_scaling"] is True
    # the epoch is selected by the whole pipeline with point labels, by the thresholds otherwise
    assert (point.selection, hard.selection, full.selection) == ("pipeline", "grid", "grid")
    assert TrainConfig(selection="grid").to_dict()["selection"] == "grid"
    with pytest.raises(InputError):
        TrainConfig(lr=-1e-3)
