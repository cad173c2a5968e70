"""Test doubles for the live pipeline tests (imported by tests/test_pipeline_*.py and friends).

ArraySource yields blank frames; LandmarkTracker replays a landmark array as if MediaPipe had
found it, so pipeline tests need neither video nor MediaPipe. make_landmarks builds a
moving, expressive face from the canonical neutral mesh.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.detector import DetectorConfig
from engine.model import ModelConfig, PfesNet
from stream.frames import Frame, Source
from stream.tracker import TrackedFace, bbox_of
from training.synth_face import neutral_mesh

__all__ = ["ArraySource", "LandmarkTracker", "make_landmarks", "small_net", "thresholds_for"]


class ArraySource(Source):
    """``n_frames`` blank (8, 8, 3) frames at ``fps``; pts = index / fps."""

    def __init__(self, n_frames: int, fps: float = 30.0, name: str = "fake"):
        self.n_frames, self.fps, self.name = int(n_frames), float(fps), name
        self.size = (8, 8)
        self.dropped = 0
        self.opened = self.closed = False
        self._img = np.zeros((8, 8, 3), np.uint8)

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.closed = True

    def frames(self) -> Iterator[Frame]:
        for i in range(self.n_frames):
            yield Frame(i, self._img, i / self.fps, time.monotonic())


class LandmarkTracker:
    """Replays per-track landmarks: tracks = {track_id: (landmarks (T,478,3), valid (T,))}."""

    def __init__(self, tracks: dict[int, tuple[np.ndarray, np.ndarray]]):
        self.tracks = tracks
        self.t = 0
        self.closed = False

    def process(self, image: np.ndarray, timestamp_ms: int) -> list[TrackedFace]:
        out = []
        for tid, (lm, valid) in sorted(self.tracks.items()):
            if self.t < len(valid) and valid[self.t]:
                m = lm[self.t]
                out.append(TrackedFace(tid, m, bbox_of(m), False))
        self.t += 1
        return out

    def close(self) -> None:
        self.closed = True


def make_landmarks(
    n_frames: int,
    events: list[tuple[int, int, int, float]],
    seed: int = 0,
    fps: float = 30.0,
    gaps: list[tuple[int, int]] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """A face (IOD ~ 100 px) with lower-face expressions.

    events: (onset, apex, offset, amplitude in IOD) mouth/cheek motions.
    gaps: (start, end) frame ranges without a face (valid False, landmarks NaN).
    Returns landmarks (T, 478, 3) float32 pixels and valid (T,) bool.
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(neutral_mesh(), dtype=np.float64)
    lower = base[:, 1] > 0.8  # mouth, lips, chin
    side = np.sign(base[:, 0])
    lm = np.repeat(base[None], n_frames, axis=0)
    for on, ap, off, amp in events:
        prof = np.zeros(n_frames)
        prof[on : ap + 1] = np.linspace(0, 1, ap - on + 1)
        prof[ap : off + 1] = np.linspace(1, 0, off - ap + 1)
        lm[:, lower, 0] += amp * prof[:, None] * side[lower][None]
        lm[:, lower, 1] -= 0.5 * amp * prof[:, None]
    t = np.arange(n_frames) / fps
    lm *= 100.0
    lm[:, :, 0] += 320 + 5 * np.sin(t)[:, None]
    lm[:, :, 1] += 180 + 3 * np.cos(0.7 * t)[:, None]
    lm += rng.normal(0, 0.15, lm.shape)
    valid = np.ones(n_frames, dtype=bool)
    for a, b in gaps:
        valid[a:b] = False
    lm = lm.astype(np.float32)
    lm[~valid] = np.nan
    return lm, valid


def small_net(in_features: int, lookahead_frames: int = 0, seed: int = 0) -> PfesNet:
    import torch

    torch.manual_seed(seed)
    net = PfesNet(ModelConfig(in_features=in_features, channels=16, dilations=(1, 2, 4),
                              proj_dim=16, lookahead_frames=lookahead_frames, dropout=0.0))
    return net.eval()


def thresholds_for(intensity: np.ndarray, **kw) -> DetectorConfig:
    """A detector config whose thresholds sit inside a random net's intensity range."""
    lo, hi = np.percentile(intensity, [55, 80])
    return DetectorConfig(open_threshold=float(hi), close_threshold=float(lo), **kw)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def save_small_model(path: Path) -> str:
    """A small random checkpoint with the current feature spec and low thresholds."""
    from engine.checkpoint import save_checkpoint
    from stream.features import feature_spec

    spec = feature_spec()
    det = DetectorConfig(open_threshold=0.2, close_threshold=0.15)
    save_checkpoint(path, small_net(spec["n_features"], lookahead_frames=1),
                    {"feature_spec": spec, "detector": det.to_dict()})
    return str(path)
