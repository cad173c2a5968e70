"""GIM for both classes (the paper's recipe) and the released code's train-mode variant."""

from __future__ import annotations

import numpy as np
import pytest

from training.gim import GimConfig, Point, gim_labels, gim_span, released_outputs
from training.trainer import TrainConfig


def _bump(t, center, width, height=1.0):
    x = np.arange(t)
    return height * np.exp(-0.5 * ((x - center) / width) ** 2)


def _curves(t=200):
    """A wide macro bump at 60 and a narrow micro bump at 150, in intensity and features."""
    a = 0.02 + 0.97 * np.maximum(_bump(t, 60, 30.0), _bump(t, 150, 6.0))
    g = np.stack([a, 0.5 * a, np.linspace(0, 0.1, t)], axis=1) @ np.ones((3, 16)) / 3
    return a, g.astype(np.float32)


def test_paper_gim_labels_both_classes_around_their_pseudo_apexes():
    a, g = _curves()
    pts = [Point(57, 0), Point(153, 1)]
    lab = gim_labels(a, g, pts, epoch=10)
    assert lab.apex_hat == [(60, 0), (150, 1)]
    for (apex, cls), pt in zip(lab.apex_hat, pts, strict=True):
        _, h = gim_span(a, pt.frame, cls, 10)
        col = lab.y[:, cls]
        assert col[apex] == pytest.approx(1.0)
        assert np.flatnonzero(col > 0).tolist() == list(range(apex - h, apex + h + 1))
    # the wide macro bump fills D_max = 36 (h 18); the micro bump's frames above theta = 0.7375
    # (|x - 150| < 6 sqrt(2 ln(0.97 / 0.7175)) = 4.65): 9 -> round(1.2 * 9) = 11 -> h 5
    assert gim_span(a, 57, 0, 10)[1] == 18
    assert gim_span(a, 153, 1, 10)[1] == 5
    assert lab.apex_pos[149:152, 1].all() and lab.apex_pos[:, 1].sum() == 3
    # micro's Gaussian falls off away from its apex (a clean bell, not a window)
    assert lab.y[150 - 5, 1] < 0.6 and lab.y[150 - 1, 1] > lab.y[150 - 3, 1]


def test_pfes_recipe_keeps_micro_on_hard_windows_and_paper_does_not():
    assert TrainConfig().gim_config().hard_classes == (1,)
    assert TrainConfig(gim_micro="gim").gim_config().hard_classes == ()
    assert TrainConfig(gim_variant="released").gim_config().variant == "released"


def test_released_outputs_are_inverted_dropout_of_the_logit_and_features():
    rng = np.random.default_rng(0)
    a = np.full(10_000, 0.9)
    g = np.ones((10_000, 4))
    a2, logit, g2 = released_outputs(a, g, rng)
    dropped = logit == 0
    assert 0.68 < dropped.mean() < 0.72
    assert np.allclose(a2[dropped], 0.5)
    assert np.allclose(logit[~dropped], np.log(9) / 0.3)
    assert set(np.unique(g2).round(6)) == {0.0, round(1 / 0.3, 6)}


def test_released_variant_gives_a_flat_window_of_minimum_width():
    a, g = _curves()
    cfg = GimConfig(variant="released")
    pts = [Point(57, 0), Point(153, 1)]
    widths = {0: [], 1: []}
    flat = []
    for seed in range(20):
        lab = gim_labels(a, g, pts, epoch=10, cfg=cfg, rng=np.random.default_rng(seed))
        for apex, cls in lab.apex_hat:
            on = np.flatnonzero(lab.y[:, cls] > 0)
            widths[cls].append(on.size)
            assert on.tolist() == list(range(on[0], on[-1] + 1)) and apex in on
            assert lab.y[apex, cls] == pytest.approx(1.0)
            flat.extend(lab.y[on[on != apex], cls].tolist())
    # the minimum spans: macro k/2 = 16 -> 17 frames, micro 8 -> 9 frames, nearly always
    assert np.mean(np.array(widths[0]) == 17) >= 0.9 and np.mean(np.array(widths[1]) == 9) >= 0.9
    # the paper's clean labels span 37 macro frames; the released ones sit near 0.6
    assert 0.5 < np.median(flat) < 0.7
    paper = gim_labels(a, g, pts, epoch=10)
    assert (paper.y[:, 0] > 0).sum() == 37


def test_released_variant_needs_a_generator():
    a, g = _curves()
    with pytest.raises(ValueError, match="random generator"):
        gim_labels(a, g, [Point(57, 0)], epoch=10, cfg=GimConfig(variant="released"))
