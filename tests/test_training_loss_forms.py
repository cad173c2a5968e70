"""The reference's loss forms against small hand-computed cases, and what the trainer logs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from pfes.errors import InputError
from training.evaluate import Interval
from training.gim import Point
from training.losses import (
    LossWeights,
    apex_focal_loss,
    iac_loss,
    smoothness_term,
    sparsity_term,
)
from training.protocol import nested_split
from training.trainer import TrainConfig, TrainVideo, train

REF = LossWeights(
    iac_form="reference",
    apex_form="reference",
    sparsity_form="reference",
    smoothness_form="reference",
)


def _iac_by_hand(f, cat, inten, temp=0.5, base=0.07):
    """The reference's formula written out pair by pair (plain Python, no shared code)."""
    n = len(f)

    def weight(i, j):
        if cat[i] == cat[j]:
            return 1.0 if cat[i] == 0 else 1.0 - abs(inten[i] - inten[j])
        return abs(inten[i] - inten[j])

    dots = [
        [sum(a * b for a, b in zip(f[i], f[j], strict=True)) / temp for j in range(n)]
        for i in range(n)
    ]
    total = 0.0
    for i in range(n):
        m = max(dots[i])
        den = sum(weight(i, k) * math.exp(dots[i][k] - m) for k in range(n) if k != i)
        pos = [j for j in range(n) if j != i and cat[j] == cat[i]]
        s = sum(math.log(weight(i, j) + 1e-6) + dots[i][j] - m - math.log(den + 1e-6) for j in pos)
        total += s / (len(pos) + 1e-6)
    return -(temp / base) * total / n


def test_reference_iac_matches_the_pairwise_formula():
    f = [[1.0, 0.0], [1.0, 0.5], [0.0, 1.0], [0.5, 1.5], [2.0, -1.0]]
    cat = [0, 0, 1, 1, 2]  # neutral, neutral, micro, micro, macro (alone: no positives)
    inten = [0.0, 0.0, 0.8, 0.6, 0.9]
    got = iac_loss(torch.tensor(f), torch.tensor(cat), torch.tensor(inten), REF)
    want = _iac_by_hand(f, cat, inten)
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert float(got) == pytest.approx(6.068699, rel=1e-5)  # pinned
    # the unnormalised form sees the features' scale; ours (L2-normalised) does not
    f2 = (torch.tensor(f) * 3).tolist()
    assert _iac_by_hand(f2, cat, inten) != pytest.approx(want, rel=1e-3)
    ours = LossWeights()
    a = iac_loss(torch.tensor(f), torch.tensor(cat), torch.tensor(inten), ours)
    b = iac_loss(torch.tensor(f2), torch.tensor(cat), torch.tensor(inten), ours)
    assert float(a) == pytest.approx(float(b), rel=1e-5)


def test_reference_iac_two_point_case_by_hand():
    # two neutral frames and one micro frame at intensity 0.8 on orthogonal unit features:
    # rows 0 and 1 have one positive each, logits (0, 0, -2) after the row max, and the
    # denominator 1 * e^0 + 0.8 * e^-2; row 2 has no positive and counts 0
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = iac_loss(f, torch.tensor([0, 0, 1]), torch.tensor([0.0, 0.0, 0.8]), REF)
    row = math.log(1 + 1e-6) - math.log(1 + 0.8 * math.exp(-2) + 1e-6)
    want = -(0.5 / 0.07) * (2 * row / (1 + 1e-6)) / 3
    assert float(got) == pytest.approx(want, rel=1e-6)
    assert float(got) == pytest.approx(0.489517, rel=1e-5)


def test_reference_apex_loss_by_hand():
    p = torch.tensor([[0.9, 0.5], [0.2, 0.5], [0.5, 0.7], [0.95, 0.1]])
    tgt = torch.tensor([[1.0, -1.0], [0.0, -1.0], [-1.0, 1.0], [0.0, 0.0]])
    got = apex_focal_loss(p, tgt, REF)
    macro = (
        -(
            0.9 * 0.1 * math.log(0.9 + 1e-5)
            + 0.1 * 0.05 * math.log(0.8 + 1e-5)
            + 0.1 * 0.70 * math.log(0.05 + 1e-5)
        )
        / 4
    )  # all T = 4 frames, ignored ones too
    micro = -(0.93 * 0.3 * math.log(0.7 + 1e-5) + 0.07 * 0.15 * math.log(0.9 + 1e-5)) / 4
    assert float(got) == pytest.approx(macro + 1.8 * micro, rel=1e-5)
    assert float(got) == pytest.approx(0.1003476, rel=1e-5)
    # ours caps a confident false apex: its negative term stays bounded as p -> 1
    hi = torch.tensor([[0.999999, 0.0]])
    neg = torch.tensor([[0.0, -1.0]])
    assert float(apex_focal_loss(hi, neg, LossWeights())) <= 0.1 * math.log(4) + 1e-6
    assert float(apex_focal_loss(hi, neg, REF)) == pytest.approx(
        0.1 * 0.75 * -math.log(1.1e-5), rel=1e-2
    )


def test_reference_sparsity_and_smoothness_by_hand():
    a = torch.tensor([0.1, 0.5, 0.2])
    valid = torch.tensor([True, True, False])
    assert float(sparsity_term(a, valid, "reference", padded_frames=10)) == pytest.approx(0.08)
    assert float(sparsity_term(a, valid, "pfes")) == pytest.approx(0.3)
    assert float(smoothness_term(a, "reference")) == pytest.approx(0.05)  # (0.4 - 0.3) / 2
    assert float(smoothness_term(a, "pfes")) == pytest.approx(0.35)  # (0.4 + 0.3) / 2


def test_unknown_loss_form_is_an_input_error():
    with pytest.raises(InputError, match="iac_form"):
        LossWeights(iac_form="normalised")


def _toy_video(name, subject, rng, t=300):
    x = rng.normal(0, 0.05, size=(t, 6)).astype(np.float32)
    pts, truth = [], []
    for k, s in enumerate(range(30, t - 60, 80)):
        cls = k % 2
        dur = 30 if cls == 0 else 10
        prof = np.sin(np.linspace(0, np.pi, dur)) * (1.0 if cls == 0 else 0.6)
        x[s : s + dur, cls] += prof
        apex = s + int(np.argmax(prof))
        pts.append(Point(apex, cls, s, apex, s + dur - 1))
        truth.append(Interval(s, s + dur - 1, ("macro", "micro")[cls], 1.0, apex))
    return TrainVideo(name, subject, x, np.ones(t, bool), pts, truth)


def _tiny(epochs=6, **kw):
    rng = np.random.default_rng(0)
    vids = [_toy_video(f"s{i}_v{j}", f"s{i}", rng) for i in range(4) for j in range(3)]
    split = nested_split([v.subject for v in vids], 0.25, seed=0)
    cfg = TrainConfig(
        epochs=epochs,
        select_from_epoch=100,
        select_every_epochs=100,
        channels=16,
        proj_dim=8,
        dilations=(1, 2, 4),
        batch_videos=3,
        selection="grid",
        instance_classifier=False,
        iac_max_frames=40,
        **kw,
    )
    return vids, split, cfg


def test_no_iac_changes_only_the_loss_not_the_batches():
    vids, split, cfg = _tiny(epochs=3)
    seen: dict[bool, list] = {}
    for use in (True, False):
        order: list = []
        train(
            vids,
            split,
            dataclasses.replace(cfg, use_iac=use),
            30.0,
            on_batch=lambda e, names, o=order: o.append((e, tuple(names))),
        )
        seen[use] = order
    assert seen[True] == seen[False] and len(seen[True]) == 9


def test_reference_iac_gradient_is_a_measurable_share_and_logged():
    vids, split, cfg = _tiny(epochs=6, weights=REF, gim_micro="gim")
    res = train(vids, split, cfg, 30.0)
    rec = res.history[-1]  # epoch 5: GIM and the apex branch are on
    for k in (
        "grad_intensity",
        "grad_apex",
        "grad_iac",
        "grad_reward",
        "grad_sparsity",
        "grad_smooth",
        "grad_total",
    ):
        assert k in rec, rec
    assert rec["grad_iac"] > 1e-3 * rec["grad_total"], rec
    # at the same weight the L2-normalised form pulls far less
    ours = dataclasses.replace(REF, iac_form="pfes")
    res2 = train(vids, split, dataclasses.replace(cfg, weights=ours), 30.0)
    assert res2.history[-1]["grad_iac"] < rec["grad_iac"]
