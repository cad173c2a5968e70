"""Preallocated per-track ring buffer of features and frame timing.

One :class:`FeatureRing` per face track holds the last ``capacity`` pushed steps: feature
vector (F,) float32, validity, the source frame number, the source timestamp ``pts_s`` and the
arrival time (``time.monotonic()``). Nothing is allocated per frame. The pipeline uses it to
map a network output (which belongs to the step pushed ``D`` steps earlier) back to its source
frame and timestamps, and to give events the source times of onset / apex / offset.

Steps are numbered from 0 per track (the engine's per-slot frame numbers); source frame
numbers increase but may jump where the source dropped frames.
"""

from __future__ import annotations

import numpy as np

from pfes.errors import InputError

__all__ = ["FeatureRing"]


class FeatureRing:
    """Fixed-size history of one track. capacity: steps kept; n_features: F."""

    def __init__(self, capacity: int, n_features: int):
        if capacity < 1 or n_features < 1:
            raise InputError("FeatureRing needs capacity >= 1 and n_features >= 1")
        self.capacity = int(capacity)
        self.n_features = int(n_features)
        self.feat = np.zeros((self.capacity, self.n_features), dtype=np.float32)
        self.valid = np.zeros(self.capacity, dtype=bool)
        self.frame = np.full(self.capacity, -1, dtype=np.int64)
        self.pts_s = np.zeros(self.capacity, dtype=np.float64)
        self.arrival_s = np.zeros(self.capacity, dtype=np.float64)
        self.pushed = 0  # steps pushed so far; step k lives at k % capacity while k >= oldest

    def reset(self) -> None:
        self.valid[:] = False
        self.frame[:] = -1
        self.pushed = 0

    @property
    def oldest(self) -> int:
        """Lowest step number still held."""
        return max(0, self.pushed - self.capacity)

    def push(self, frame: int, feat: np.ndarray, valid: bool, pts_s: float, arrival_s: float) -> int:
        """Store one step; returns its step number."""
        k = self.pushed
        i = k % self.capacity
        self.feat[i] = feat
        self.valid[i] = valid
        self.frame[i] = frame
        self.pts_s[i] = pts_s
        self.arrival_s[i] = arrival_s
        self.pushed = k + 1
        return k

    def _index(self, step: int) -> int:
        if not self.oldest <= step < self.pushed:
            raise InputError(f"step {step} is not in the ring (holds {self.oldest}..{self.pushed - 1})")
        return step % self.capacity

    def step_info(self, step: int) -> tuple[int, float, float]:
        """(source frame, pts_s, arrival_s) of a held step."""
        i = self._index(step)
        return int(self.frame[i]), float(self.pts_s[i]), float(self.arrival_s[i])

    def last(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last min(n, held) steps in order: features (n, F), valid (n,), frames (n,)."""
        n = min(int(n), self.pushed - self.oldest)
        idx = np.arange(self.pushed - n, self.pushed) % self.capacity
        return self.feat[idx].copy(), self.valid[idx].copy(), self.frame[idx].copy()

    def pts_of(self, frame: int, fps: float) -> float:
        """Source time of a source frame number; extrapolated at ``fps`` if not held exactly."""
        held = self.pushed - self.oldest
        if held == 0:
            return frame / fps if fps > 0 else 0.0
        idx = np.arange(self.oldest, self.pushed) % self.capacity
        frames = self.frame[idx]
        j = int(np.searchsorted(frames, frame))
        if j < held and frames[j] == frame:
            return float(self.pts_s[idx[j]])
        j = min(max(j - 1, 0), held - 1)  # nearest held frame at or before
        step = 1.0 / fps if fps > 0 else 0.0
        return float(self.pts_s[idx[j]] + (frame - frames[j]) * step)
