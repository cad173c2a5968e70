"""FeatureRing: preallocated, wraps, maps steps to frames and frames to source times."""

from __future__ import annotations

import numpy as np
import pytest

from pfes.errors import InputError
from stream.ringbuffer import FeatureRing


def test_ring_wraps_and_keeps_the_last_steps():
    r = FeatureRing(capacity=4, n_features=2)
    buf = r.feat
    frames = [0, 1, 2, 5, 6, 7]  # the source dropped frames 3 and 4
    for k, f in enumerate(frames):
        assert r.push(f, np.full(2, k, np.float32), k % 2 == 0, f / 30.0, 100.0 + k) == k
    assert r.feat is buf  # no reallocation
    assert r.oldest == 2 and r.pushed == 6
    feats, valid, fr = r.last(10)
    assert fr.tolist() == [2, 5, 6, 7]
    assert feats[:, 0].tolist() == [2, 3, 4, 5]
    assert valid.tolist() == [True, False, True, False]
    assert r.step_info(3) == (5, pytest.approx(5 / 30.0), 103.0)
    with pytest.raises(InputError):
        r.step_info(1)  # overwritten


def test_pts_of_exact_and_extrapolated():
    r = FeatureRing(capacity=8, n_features=1)
    for f in (10, 11, 12, 14):
        r.push(f, np.zeros(1, np.float32), True, 1.0 + f * 0.04, 0.0)
    assert r.pts_of(12, fps=25.0) == pytest.approx(1.48)
    assert r.pts_of(13, fps=25.0) == pytest.approx(1.52)  # dropped frame: from frame 12
    assert r.pts_of(5, fps=25.0) == pytest.approx(1.40 - 5 * 0.04)  # before the ring
    r.reset()
    assert r.pts_of(50, fps=25.0) == pytest.approx(2.0)
