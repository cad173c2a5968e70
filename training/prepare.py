"""Turn a dataset directory into training videos: features once, points, truth intervals."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from pfes.errors import InputError
from training.dataset import Annotation, Dataset
from training.evaluate import Interval
from training.gim import Point
from training.infer import video_features
from training.trainer import TrainVideo

__all__ = ["prepare_videos", "simulate_point", "truth_of"]

log = logging.getLogger(__name__)
CLS = {"macro": 0, "micro": 1}


def simulate_point(a: Annotation, rng: np.random.Generator) -> int:
    """Where a dataset has no point column: apex + N(0, 0.18 x duration), clipped (method.md)."""
    dur = a.offset - a.onset + 1
    p = int(round(a.apex + rng.normal(0.0, 0.18 * dur)))
    return min(max(p, a.onset), a.offset)


def truth_of(anns: Sequence[Annotation]) -> list[Interval]:
    return [Interval(a.onset, a.offset, a.kind, 1.0, a.apex) for a in anns]


def prepare_videos(
    ds: Dataset,
    videos: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    feature_spec: dict | None = None,
) -> tuple[list[TrainVideo], float]:
    """Features and labels for ``videos`` (default: all). Returns (videos, fps).

    feature_spec: compute features as a checkpoint's spec records (None: default settings).
    """
    names = list(videos) if videos is not None else list(ds.videos)
    rng = np.random.default_rng(seed)
    out: list[TrainVideo] = []
    fps_seen: set[float] = set()
    for i, name in enumerate(names):
        lm = ds.landmarks(name)
        fps_seen.add(round(lm.fps, 3))
        feats, valid = video_features(lm.landmarks, lm.valid, lm.fps, feature_spec)
        anns = ds.annotations_of(name)
        pts = []
        for a in anns:
            if a.offset >= lm.frames:
                raise InputError(f"{name}: annotation {a.onset}-{a.offset} beyond {lm.frames} frames")
            frame = a.point if a.point is not None else simulate_point(a, rng)
            pts.append(Point(frame, CLS[a.kind], a.onset, a.apex, a.offset))
        out.append(TrainVideo(name, ds.subject_of[name], feats, valid, pts, truth_of(anns)))
        if progress:
            progress(i + 1, len(names))
    if len(fps_seen) > 1:
        raise InputError(f"videos have different frame rates {sorted(fps_seen)}; resample first")
    return out, (fps_seen.pop() if fps_seen else 30.0)
