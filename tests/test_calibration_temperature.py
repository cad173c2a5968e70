"""Temperature scaling: the fit recovers a known temperature and lowers the calibration error."""

import numpy as np
import pytest

from calibration.temperature import (
    apply_temperature,
    binary_nll,
    expected_calibration_error,
    fit_temperature,
    to_logits,
)


def _miscalibrated(n: int, true_t: float, seed: int = 0):
    """Labels drawn from sigmoid(z); the model reports sigmoid(z * true_t) (over-confident if >1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
    reported = 1.0 / (1.0 + np.exp(-z * true_t))
    return reported, y


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_recovers_temperature_and_ece_drops(true_t):
    probs, y = _miscalibrated(20000, true_t)
    t = fit_temperature(probs, y)
    assert t == pytest.approx(true_t, rel=0.1)
    before = expected_calibration_error(probs, y)
    after = expected_calibration_error(apply_temperature(probs, t), y)
    assert before > 0.04
    assert after < 0.02
    assert after < 0.5 * before


def test_logits_and_probabilities_agree():
    probs, y = _miscalibrated(5000, 2.0, seed=1)
    z = to_logits(probs)
    assert fit_temperature(z, y, logits=True) == pytest.approx(fit_temperature(probs, y), rel=1e-4)
    np.testing.assert_allclose(
        apply_temperature(z, 2.0, logits=True), apply_temperature(probs, 2.0), atol=1e-9
    )


def test_fit_minimises_nll():
    probs, y = _miscalibrated(4000, 3.0, seed=2)
    z = to_logits(probs)
    t = fit_temperature(probs, y)
    best = binary_nll(z, y, t)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert binary_nll(z, y, other) > best


def test_mask_ignores_frames():
    probs, y = _miscalibrated(4000, 2.0, seed=3)
    junk = np.concatenate([probs, np.full(4000, 0.999)])
    junk_y = np.concatenate([y, np.zeros(4000)])
    mask = np.arange(8000) < 4000
    assert fit_temperature(junk, junk_y, mask=mask) == pytest.approx(fit_temperature(probs, y))


def test_degenerate_inputs_return_one():
    assert fit_temperature(np.array([0.3]), np.array([1.0])) == 1.0
    assert fit_temperature(np.array([0.3, 0.9]), np.array([1.0, 1.0])) == 1.0


def test_ece_known_values():
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([1, 1])) == pytest.approx(0.1)
    assert expected_calibration_error(np.array([0.25, 0.75]), np.array([0, 1])) == pytest.approx(
        0.25
    )
    assert expected_calibration_error(np.array([]), np.array([])) == 0.0


def test_bad_input_raises():
    with pytest.raises(ValueError):
        fit_temperature(np.array([1.5, 0.2]), np.array([1, 0]))
    with pytest.raises(ValueError):
        apply_temperature(np.array([0.5]), 0.0)
    with pytest.raises(ValueError):
        expected_calibration_error(np.array([0.5]), np.array([1, 0]))
