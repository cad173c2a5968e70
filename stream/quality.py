"""Tracking quality from the feature stream: how much the face mesh jitters.

A spotter trained on synthetic tracks knows only the tracker noise it was shown. The brow
regions are where MediaPipe jitters most on real pixels, so their 2-frame motion measures the
tracking noise: the median over the last 8 s of frames (expressions are short and rare enough
not to move the median), in inter-ocular distances. Measured on 8-s windows (2026-11-27):

- the bundled model's training data (synthetic, with brow jitter up to 0.005 IOD per frame;
  925 windows): median 0.0058, 99th percentile 0.0099, largest 0.0104;
- MediaPipe on the real-pixel clips of ``benchmarks/bench_realpixels.py`` (32 windows each):
  good light median 0.0038 (95th percentile 0.0046), half resolution 0.0049 (0.0055),
  mirrored 0.0038, dim and noisy light 0.0092 (5th percentile 0.0086). A model trained without
  brow jitter (the bundled model until 18:30 UTC) turned the dim-light jitter into 34 false
  micro-expressions in 320 s; the bundled model, trained on it, reached 0.892 there
  (benchmarks/RESULTS.md, "Worse cameras").

``NOISY_IOD`` lies above all of the training data: beyond it the model sees more tracker noise
than it ever learned from, and micro-expression events are not to be trusted. It is a
heuristic measured on one face; the live pipeline reports the value in its heartbeat
(``tracking_noise_iod``, ``tracking_noisy``) and ``pfes run`` in its summary.
"""

from __future__ import annotations

import numpy as np

from stream.features import feature_names

__all__ = ["NOISY_IOD", "MIN_FRAMES", "WINDOW_FRAMES", "brow_jitter", "is_noisy", "noisy_warning"]

NOISY_IOD = 0.011
MIN_FRAMES = 60  # valid frames needed for a measurement (2 s at 30 fps)
WINDOW_FRAMES = 240  # the most recent frames used (8 s at 30 fps)
_BROW = tuple(feature_names().index(n) for n in ("brow_inner.diff2", "brow_outer.diff2"))


def brow_jitter(feat: np.ndarray, valid: np.ndarray) -> float | None:
    """Median over valid frames of the brows' mean 2-frame motion (IOD); None if too few.

    feat: (T, F) feature rows in ``feature_names()`` order; valid: (T,) bool.
    """
    feat = np.asarray(feat)
    valid = np.asarray(valid, dtype=bool)
    if feat.ndim != 2 or feat.shape[1] <= max(_BROW) or len(valid) != len(feat):
        return None
    rows = feat[-WINDOW_FRAMES:][valid[-WINDOW_FRAMES:]]
    if len(rows) < MIN_FRAMES:
        return None
    return float(np.median(np.abs(rows[:, _BROW]).mean(axis=1)))


def is_noisy(jitter: float | None) -> bool:
    """Whether a ``brow_jitter`` measurement (None: not measured yet) is above ``NOISY_IOD``."""
    return jitter is not None and jitter > NOISY_IOD


def noisy_warning(jitter: float) -> str:
    """The warning for a stream whose tracking is too noisy (the caller names the stream)."""
    return (f"noisy face tracking (brow jitter {jitter:.4f} IOD, above {NOISY_IOD}: poor "
            "light or a small face?); micro-expression events are unreliable")
