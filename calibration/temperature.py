"""Temperature scaling of the apex classifier's sigmoids, and the calibration error that checks it.

The apex branch has two independent sigmoids (macro, micro). Each is calibrated on held-out data
by a single temperature T > 0: ``p = sigmoid(logit / T)``, with T chosen to minimise the negative
log-likelihood (Guo et al. 2017, binary form). T > 1 softens over-confident scores, T < 1
sharpens under-confident ones; the ranking of scores never changes, so detection does not either.

Calibrate each sigmoid separately: ``fit_temperature(macro_scores, macro_labels)`` and the same
for micro. Pure numpy; the search is a golden-section minimisation of the NLL over
beta = 1/T, in which the NLL is convex.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "to_logits",
    "fit_temperature",
    "apply_temperature",
    "expected_calibration_error",
    "binary_nll",
]

_P_EPS = 1e-7
_BETA_RANGE = (1e-3, 100.0)  # T between 0.01 and 1000


def to_logits(scores: np.ndarray, *, logits: bool = False) -> np.ndarray:
    """scores (N,) as float64 logits: passed through if ``logits``, else log(p / (1 - p))."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if logits:
        return s
    if s.size and (np.nanmin(s) < 0.0 or np.nanmax(s) > 1.0):
        raise ValueError("probabilities must lie in [0, 1]; pass logits=True for raw logits")
    p = np.clip(s, _P_EPS, 1.0 - _P_EPS)
    return np.log(p) - np.log1p(-p)


def _prepare(
    scores: np.ndarray, labels: np.ndarray, logits: bool, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    z = to_logits(scores, logits=logits)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if z.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {z.size} vs {y.size}")
    keep = np.isfinite(z) & np.isfinite(y)
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool).reshape(-1)
    return z[keep], y[keep]


def binary_nll(z: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of labels y (N,) in [0, 1] under sigmoid(z / temperature)."""
    a = np.asarray(z, dtype=np.float64) / temperature
    # -[y log s(a) + (1-y) log(1-s(a))] = softplus(a) - y a, computed stably
    return float(np.mean(np.logaddexp(0.0, a) - np.asarray(y, dtype=np.float64) * a))


def fit_temperature(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    logits: bool = False,
    mask: np.ndarray | None = None,
    tol: float = 1e-6,
) -> float:
    """Temperature T minimising the NLL of ``sigmoid(logit / T)`` against the labels.

    scores: (N,) probabilities in [0, 1] (default) or logits (``logits=True``); labels: (N,) 0/1
    (soft labels in [0, 1] are accepted); mask: optional (N,) bool, frames to use (the apex
    branch ignores some frames). Returns T > 0; 1.0 when fewer than two usable samples or only
    one class is present (nothing to calibrate against).
    """
    z, y = _prepare(scores, labels, logits, mask)
    if z.size < 2 or np.all(y == y[0]) or np.all(z == 0):
        return 1.0
    lo, hi = math.log(_BETA_RANGE[0]), math.log(_BETA_RANGE[1])

    def nll_logbeta(lb: float) -> float:
        return binary_nll(z * math.exp(lb), y)

    # coarse grid first (NLL is convex in beta, so unimodal in log beta), then golden section
    grid = np.linspace(lo, hi, 41)
    vals = [nll_logbeta(g) for g in grid]
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll_logbeta(c), nll_logbeta(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll_logbeta(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll_logbeta(d)
    return float(math.exp(-0.5 * (a + b)))


def apply_temperature(
    scores: np.ndarray, temperature: float, *, logits: bool = False
) -> np.ndarray:
    """Calibrated probabilities sigmoid(logit / T): scores (N,) probabilities or logits.

    Returns float64 with the input's shape.
    """
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    s = np.asarray(scores)
    z = to_logits(s, logits=logits) / temperature
    p = np.exp(-np.logaddexp(0.0, -z))
    return p.reshape(s.shape)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of binary probabilities (positive-class reliability).

    probs: (N,) in [0, 1]; labels: (N,) 0/1. Equal-width bins on [0, 1];
    ECE = sum_b (n_b / N) * |mean(labels in b) - mean(probs in b)|. Returns 0.0 for N == 0.
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"probs and labels differ in length: {p.size} vs {y.size}")
    if bins < 1:
        raise ValueError("bins must be >= 1")
    if p.size == 0:
        return 0.0
    b = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    sum_p = np.bincount(b, weights=p, minlength=bins)
    sum_y = np.bincount(b, weights=y, minlength=bins)
    return float(np.sum(np.abs(sum_y - sum_p)) / p.size)
