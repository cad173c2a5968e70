"""The trainer on toy feature sequences: it learns, selects honestly, and saves what it chose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pfes.errors import InputError
from training.evaluate import Interval
from training.gim import Point
from training.protocol import kfold_folds, loso_folds, nested_split
from training.trainer import TrainConfig, TrainVideo, train


def _toy_video(name, subject, rng, t=600):
    x = rng.normal(0, 0.05, size=(t, 6)).astype(np.float32)
    pts, truth = [], []
    s = 30
    while s < t - 60:
        if rng.random() < 0.7:
            kind, cls, dur, dim = "macro", 0, int(rng.integers(24, 45)), 0
        else:
            kind, cls, dur, dim = "micro", 1, int(rng.integers(8, 14)), 1
        e = s + dur - 1
        prof = np.sin(np.linspace(0, np.pi, dur)) * (1.0 if cls == 0 else 0.6)
        x[s : e + 1, dim] += prof
        x[s : e + 1, 2 + cls] += prof  # a second channel per class
        apex = s + int(np.argmax(prof))
        pts.append(Point(apex, cls, s, apex, e))
        truth.append(Interval(s, e, kind, 1.0, apex))
        s = e + int(rng.integers(40, 90))
    return TrainVideo(name, subject, x, np.ones(t, bool), pts, truth)


@pytest.mark.slow
@pytest.mark.parametrize("supervision", ["point", "full"])
def test_trainer_learns_toy_problem(supervision):
    rng = np.random.default_rng(0)
    vids = [_toy_video(f"s{i}_v{j}", f"s{i}", rng) for i in range(8) for j in range(3)]
    # a held-out subject whose features are poison: if the trainer read it, the loss would be NaN
    bad = _toy_video("s9_v0", "s9", rng)
    bad.feats[:] = np.nan
    split = nested_split([v.subject for v in vids] + ["s9"], 0.25, seed=0, test=["s9"])
    cfg = TrainConfig(supervision=supervision, epochs=14, select_from_epoch=5, select_every_epochs=3,
                      channels=24, proj_dim=16, dilations=(1, 2, 4, 8), lr=5e-3, batch_videos=2)
    res = train(vids + [bad], split, cfg, fps=30.0)
    assert res.val_result["overall"]["f1"] >= 0.6, res.history
    assert 5 <= res.best_epoch <= 13
    assert "val_f1" in res.history[-1]
    ic = res.instance_classifier
    assert ic is not None and ic["f1_with"]["overall"] == pytest.approx(res.val_result["overall"]["f1"], abs=1e-4)
    assert bool(res.detector.instance_classifier) == ic["used"]


def _dipping_curves():
    from calibration.operating_point import Curve

    curves = []
    for k in range(4):
        t = 900
        inten, apex, truth = np.full(t, 0.05), np.zeros((t, 2)), []
        for s in range(60 + 7 * k, 800, 150):
            e = s + 60
            inten[s:e + 1] = 0.9
            inten[s + 28:s + 33] = 0.1  # a 5-frame dip: one run only if it is bridged
            apex[s:e + 1, 0] = 0.5
            truth.append(Interval(s, e, "macro", 1.0, s + 15))
        curves.append(Curve(f"v{k}", inten, apex, np.ones(t, bool), truth))
    return curves


def test_pipeline_selection_scores_what_the_saved_model_runs():
    """Selection "grid" sees the thresholds alone; "pipeline" also bridges a dip, as the saved
    model's detector will: an expression whose intensity dips in the middle is two half-length
    runs (no match at IoU 0.5) for the first, one match for the second."""
    from training.trainer import _selection_result

    curves = _dipping_curves()
    grid = _selection_result(TrainConfig(selection="grid"), curves, 30.0)
    pipe = _selection_result(TrainConfig(selection="pipeline"), curves, 30.0)
    assert grid["overall"]["f1"] < 0.2
    assert pipe["overall"]["f1"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="selection"):
        TrainConfig(selection="final")


def test_splits_never_mix_held_out_subjects():
    subs = [f"s{i}" for i in range(10)]
    for sp in loso_folds(subs):
        assert len(sp.test) == 1
        assert not set(sp.test) & (set(sp.inner_train) | set(sp.inner_val))
        assert set(sp.test) | set(sp.inner_train) | set(sp.inner_val) == set(subs)
    folds = kfold_folds(subs, 3)
    assert sorted(s for f in folds for s in f.test) == subs
    sp = nested_split(subs, 0.2, seed=1)
    assert len(sp.inner_val) == 2 and not set(sp.inner_val) & set(sp.inner_train)


def test_weight_average_tracks_the_mean_of_recent_weights():
    from engine.model import ModelConfig, PfesNet
    from training.trainer import _Ema

    net = PfesNet(ModelConfig(in_features=4, channels=8, dilations=(1, 2), proj_dim=4))
    ema = _Ema(net, steps=4.0)  # decay 0.75 once more than 4 updates have been seen
    first = [p.detach().clone() for p in net.parameters()]
    ema.update(net)  # first update copies the weights (bias correction)
    assert all(torch.equal(q, p) for q, p in zip(ema.net.parameters(), first, strict=True))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)  # n = 2: rate 1/2 -> halfway
    assert all(torch.allclose(q, p + 0.5) for q, p in zip(ema.net.parameters(), first, strict=True))
    for _ in range(3):
        ema.update(net)  # rates 1/3, 1/4, then 1/4 (the horizon)
    gap = 0.5 * (2 / 3) * (3 / 4) * (3 / 4)
    assert all(torch.allclose(q, p + 1.0 - gap) for q, p in zip(ema.net.parameters(), first, strict=True))
    assert not any(q.requires_grad for q in ema.net.parameters())
    with pytest.raises(InputError):
        TrainConfig(ema_epochs=-1)


@pytest.mark.slow
def test_trainer_saves_the_averaged_weights_it_selected():
    rng = np.random.default_rng(1)
    vids = [_toy_video(f"s{i}_v{j}", f"s{i}", rng, t=400) for i in range(6) for j in range(2)]
    split = nested_split([v.subject for v in vids], 0.34, seed=0)
    base = dict(supervision="hard", epochs=6, select_from_epoch=2, select_every_epochs=2,
                channels=16, proj_dim=8, dilations=(1, 2, 4), lr=5e-3, batch_videos=2)
    plain = train(vids, split, TrainConfig(**base), fps=30.0)
    avg = train(vids, split, TrainConfig(**base, ema_epochs=2.0), fps=30.0)
    # same seed, same updates: only the weights judged and kept differ
    assert [h["intensity"] for h in plain.history] == [h["intensity"] for h in avg.history]
    assert any(not torch.equal(a, b) for a, b in zip(plain.net.parameters(), avg.net.parameters(), strict=True))


def test_input_statistics_are_the_mean_and_spread_of_valid_training_frames():
    from training.trainer import input_statistics

    rng = np.random.default_rng(2)
    a = _toy_video("a", "s0", rng, t=200)
    b = _toy_video("b", "s1", rng, t=300)
    a.valid[:50] = False
    a.feats[:50] = 99.0  # invalid frames must not count
    a.feats[50:, 5] = b.feats[:, 5] = 0.25  # a feature that never varies keeps a bounded scale
    shift, scale = input_statistics([a, b])
    x = np.concatenate([a.feats[50:], b.feats]).astype(np.float64)
    np.testing.assert_allclose(shift.numpy(), x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale.numpy()[:5], 1.0 / x.std(0)[:5], rtol=1e-4)
    assert scale[5] == pytest.approx(1e4)
    with pytest.raises(InputError, match="two valid"):
        a.valid[:] = False
        input_statistics([a])


@pytest.mark.slow
def test_trainer_with_input_scaling_returns_a_folded_network_that_takes_raw_features():
    rng = np.random.default_rng(0)
    vids = [_toy_video(f"s{i}_v{j}", f"s{i}", rng) for i in range(6) for j in range(2)]
    for v in vids:  # the features' real units: small lengths
        v.feats *= 0.01
    split = nested_split([v.subject for v in vids], 0.34, seed=0)
    cfg = TrainConfig(supervision="full", epochs=8, select_from_epoch=3, select_every_epochs=2,
                      channels=16, proj_dim=8, dilations=(1, 2, 4), lr=5e-3, batch_videos=2,
                      input_scaling=True, instance_classifier=False)
    res = train(vids, split, cfg, fps=30.0)
    assert not res.net.input_scaling_active
    assert res.val_result["overall"]["f1"] >= 0.5, res.history
