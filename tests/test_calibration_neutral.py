"""Neutral baseline: held expressions are not absorbed, slow neutral drift is followed."""

import numpy as np
import pytest

from calibration.neutral import NeutralBaseline, NeutralConfig

FPS = 30.0
D = 6
NOISE = 0.002


def _run(x: np.ndarray, config: NeutralConfig | None = None) -> np.ndarray:
    """Displacements x_t - b_t for a (T, D) sequence."""
    nb = NeutralBaseline(D, FPS, config)
    return np.stack([v - nb.push(v) for v in x])


def _noise(t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, NOISE, (t, D))


def test_long_held_expression_is_not_absorbed():
    # 2 s neutral, 0.3 s onset, 10 s held at 0.08 on two dimensions, 0.3 s release, 3 s neutral
    amp = np.concatenate([np.zeros(60), np.linspace(0, 1, 9), np.ones(300), np.linspace(1, 0, 9)])
    amp = np.concatenate([amp, np.zeros(90)])
    x = 0.5 + _noise(amp.size)
    x[:, 1] += 0.08 * amp
    x[:, 4] -= 0.08 * amp
    d = _run(x)
    held = slice(69, 369)
    assert np.all(d[held, 1] > 0.07) and np.all(d[held, 4] < -0.07)
    # the end of the hold is as strong as its start: nothing leaked into the baseline
    assert abs(d[360:369, 1].mean() - d[70:79, 1].mean()) < 0.004
    assert np.abs(d[-60:]).max() < 5 * NOISE


def test_slow_neutral_drift_is_followed():
    t = 1800  # 60 s, drifting by 0.06 (0.001 per second) on every dimension
    drift = np.linspace(0.0, 0.06, t)[:, None]
    x = 0.2 + drift + _noise(t, seed=1)
    d = _run(x)
    assert np.abs(d[-300:]).mean() < 0.008  # EMA lag ~ rate * tau = 0.005
    frozen = NeutralBaseline(D, FPS, NeutralConfig(tau_s=1e9))
    d_frozen = np.stack([v - frozen.push(v) for v in x])
    assert np.abs(d_frozen[-300:]).mean() > 0.05


def test_warmup_is_causal_running_median():
    x = _noise(40, seed=2) + 1.0
    nb = NeutralBaseline(D, FPS)
    for i in range(30):
        b = nb.push(x[i])
        np.testing.assert_allclose(b, np.median(x[: i + 1], axis=0))
    assert nb.warmed_up and nb.noise_sigma is not None
    assert np.all(nb.noise_sigma >= NeutralConfig().noise_floor)


def test_blink_freezes_then_baseline_unchanged():
    x = 0.3 + _noise(200, seed=3)
    x[100:106, 2] += 0.3  # a blink
    nb = NeutralBaseline(D, FPS)
    flags = []
    for v in x:
        nb.push(v)
        flags.append(nb.last_neutral)
    assert not any(flags[100:106])
    assert np.abs(nb.baseline - 0.3).max() < 3 * NOISE


def test_relock_after_long_non_neutral_stretch():
    # warm-up taken during a smile; the face then rests for good: relock re-learns neutral
    x = 0.3 + _noise(600, seed=4)
    x[:30, 0] += 0.2
    d = _run(x, NeutralConfig(relock_after_s=5.0))
    assert np.all(np.abs(d[40:140, 0]) > 0.15)  # still measured against the wrong baseline
    assert np.abs(d[-100:]).max() < 5 * NOISE  # relocked after 5 s


def test_reset_forgets():
    nb = NeutralBaseline(D, FPS)
    for v in _noise(40) + 5.0:
        nb.push(v)
    nb.reset()
    assert not nb.warmed_up and nb.baseline is None
    np.testing.assert_allclose(nb.push(np.ones(D)), np.ones(D))


def test_bad_config_raises():
    with pytest.raises(ValueError):
        NeutralConfig(tau_s=0.0)
    with pytest.raises(ValueError):
        NeutralBaseline(3, 0.0)
