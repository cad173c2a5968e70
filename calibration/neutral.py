"""Per-track neutral-face baseline: warm-up, then a gated slow running estimate.

A face's resting shape differs between people and drifts slowly within a session (posture, the
tracker's fit, lighting). Expression features are displacements from that resting shape, so the
baseline must follow slow neutral drift but must NOT absorb an expression, even one held for tens
of seconds. :class:`NeutralBaseline` does this per track:

1. **Warm-up** (the first ``warmup_s`` of valid frames): the baseline is the running per-dimension
   median of the frames seen so far (causal: frame t uses frames <= t). At the end of warm-up the
   per-dimension noise scale is estimated robustly, ``sigma = max(1.4826 * MAD, noise_floor)``.
2. **Gated tracking**: a frame is *neutral* when every dimension of its displacement from the
   current baseline is within ``gate_z * sigma``. Only neutral frames update the baseline, by an
   exponential moving average with time constant ``tau_s``; while the face is expressive (or
   blinking) the baseline is frozen. A slow genuine drift (a few thousandths of the inter-ocular
   distance per second with the defaults) keeps every frame inside the gate and is followed; an
   expression leaves the gate within a few frames and is never absorbed.
3. **Relock**: after ``relock_after_s`` without a single neutral frame the baseline is assumed to be
   wrong (for instance a warm-up taken during a smile) and warm-up starts again.

Call :meth:`NeutralBaseline.reset` when the track changes (a different face). Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NeutralConfig", "NeutralBaseline"]


@dataclass(frozen=True)
class NeutralConfig:
    """Settings of :class:`NeutralBaseline` (times in seconds, sizes in feature units).

    warmup_s: length of the warm-up, in seconds of valid frames (at least one frame).
    tau_s: time constant of the EMA that follows neutral drift.
    gate_z: a frame is neutral when max_j |x_j - b_j| / sigma_j <= gate_z.
    noise_floor: lower bound of the per-dimension noise scale sigma (feature units; for pfes
        features, fractions of the inter-ocular distance).
    relock_after_s: restart warm-up after this long with no neutral frame; 0 disables it.
    """

    warmup_s: float = 1.0
    tau_s: float = 5.0
    gate_z: float = 4.0
    noise_floor: float = 0.004
    relock_after_s: float = 60.0

    def __post_init__(self) -> None:
        if not (self.warmup_s >= 0 and self.tau_s > 0 and self.gate_z > 0):
            raise ValueError("NeutralConfig: warmup_s >= 0, tau_s > 0 and gate_z > 0 required")
        if not (self.noise_floor > 0 and self.relock_after_s >= 0):
            raise ValueError("NeutralConfig: noise_floor > 0 and relock_after_s >= 0 required")


class NeutralBaseline:
    """Streaming neutral baseline of a D-dimensional per-frame shape vector.

    n_dims: D; fps: frame rate used to turn the config's seconds into frames.
    Feed valid frames only, in order, with :meth:`push`; skip frames with no face (the baseline
    simply waits). The value returned for a frame is final.
    """

    def __init__(self, n_dims: int, fps: float, config: NeutralConfig | None = None) -> None:
        if n_dims < 1 or not (fps > 0 and math.isfinite(fps)):
            raise ValueError("NeutralBaseline needs n_dims >= 1 and a finite fps > 0")
        self.config = config or NeutralConfig()
        self.n_dims = int(n_dims)
        self.fps = float(fps)
        self.warmup_frames = max(1, int(round(self.config.warmup_s * self.fps)))
        self.alpha = 1.0 - math.exp(-1.0 / (self.config.tau_s * self.fps))
        self.relock_frames = int(round(self.config.relock_after_s * self.fps))
        self.reset()

    def reset(self) -> None:
        """Forget everything (new track)."""
        self._warm = np.empty((self.warmup_frames, self.n_dims), dtype=np.float64)
        self._n_warm = 0
        self._base: np.ndarray | None = None
        self._sigma: np.ndarray | None = None
        self._thresh: np.ndarray | None = None
        self._since_neutral = 0
        self.last_neutral = False

    @property
    def warmed_up(self) -> bool:
        """True once the warm-up is complete and gated tracking runs."""
        return self._base is not None

    @property
    def baseline(self) -> np.ndarray | None:
        """(D,) float64 current baseline, or None before the first frame."""
        if self._base is not None:
            return self._base.copy()
        if self._n_warm:
            return np.median(self._warm[: self._n_warm], axis=0)
        return None

    @property
    def noise_sigma(self) -> np.ndarray | None:
        """(D,) float64 robust per-dimension noise scale, None during warm-up."""
        return None if self._sigma is None else self._sigma.copy()

    def push(self, x: np.ndarray) -> np.ndarray:
        """Add one valid frame's vector x (D,) and return the baseline (D,) float64 to subtract.

        During warm-up the returned baseline includes x; afterwards it is the baseline before x
        was (possibly) absorbed. ``last_neutral`` tells whether x was judged neutral.
        """
        v = np.asarray(x, dtype=np.float64).reshape(self.n_dims)
        if self._base is None:
            self._warm[self._n_warm] = v
            self._n_warm += 1
            seen = self._warm[: self._n_warm]
            med = np.median(seen, axis=0)
            if self._n_warm == self.warmup_frames:
                mad = np.median(np.abs(seen - med), axis=0)
                self._sigma = np.maximum(1.4826 * mad, self.config.noise_floor)
                self._thresh = self.config.gate_z * self._sigma
                self._base = med.copy()
                self._since_neutral = 0
            self.last_neutral = True
            return med
        base = self._base.copy()
        dev = v - base
        neutral = bool(np.all(np.abs(dev) <= self._thresh))
        self.last_neutral = neutral
        if neutral:
            self._base += self.alpha * dev
            self._since_neutral = 0
        else:
            self._since_neutral += 1
            if self.relock_frames and self._since_neutral >= self.relock_frames:
                self.reset()
                return self.push(v)
        return base
