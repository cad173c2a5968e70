"""Offline proposals (method.md, "Proposals"): the reference's multi-threshold search.

For each class and threshold, runs of frames with intensity above the threshold become
candidates; the apex is the run's argmax; a candidate is kept when the apex classifier's score
of that class exceeds ``min_class_prob``; its score is ``mean inside - mean of an outer band
(band_ratio x length on each side) + 0.2 x class score``. Then Gaussian soft-NMS, duration
filters, a score floor, a final hard NMS and a per-video cap per class.

The live system uses the online detector (``engine.detector``) instead; ``pfes eval
--proposals offline`` scores this path for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.evaluate import Interval, iou

__all__ = ["ProposalConfig", "offline_proposals", "soft_nms", "hard_nms"]

CLASSES = ("macro", "micro")


@dataclass(frozen=True)
class ProposalConfig:
    """All constants of the offline search; durations in frames at ``fps_ref``."""

    thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    min_class_prob: float = 0.5
    band_ratio: float = 0.2
    class_weight: float = 0.2
    soft_nms_sigma: float = 0.3
    macro_frames: tuple[int, int] = (15, 240)
    micro_frames: tuple[int, int] = (9, 15)
    fps_ref: float = 30.0
    score_floor: float = 0.3
    final_nms_iou: float = 0.5
    max_per_video: tuple[int, int] = (8, 2)  # macro, micro (CAS(ME)^2)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def soft_nms(props: list[Interval], sigma: float) -> list[Interval]:
    """Gaussian soft-NMS: each pick decays overlapping scores by exp(-iou^2 / sigma)."""
    pool = list(props)
    out: list[Interval] = []
    while pool:
        k = max(range(len(pool)), key=lambda i: pool[i].score)
        best = pool.pop(k)
        out.append(best)
        pool = [
            Interval(p.onset, p.offset, p.kind,
                     p.score * float(np.exp(-iou(p.onset, p.offset, best.onset, best.offset) ** 2 / sigma)),
                     p.apex)
            for p in pool
        ]
    return out


def hard_nms(props: list[Interval], thr: float) -> list[Interval]:
    out: list[Interval] = []
    for p in sorted(props, key=lambda p: -p.score):
        if all(iou(p.onset, p.offset, q.onset, q.offset) < thr for q in out):
            out.append(p)
    return out


def offline_proposals(
    intensity: np.ndarray, apex: np.ndarray, fps: float = 30.0, cfg: ProposalConfig = ProposalConfig()
) -> list[Interval]:
    """intensity (T,), apex (T, 2) -> scored intervals of both classes for one video."""
    a = np.asarray(intensity, dtype=np.float64)
    t = a.shape[0]
    scale = fps / cfg.fps_ref
    out: list[Interval] = []
    for c, kind in enumerate(CLASSES):
        cands: list[Interval] = []
        for thr in cfg.thresholds:
            for s, e in _runs(a > thr):
                k = s + int(np.argmax(a[s : e + 1]))
                prob = float(apex[k, c])
                if prob <= cfg.min_class_prob:
                    continue
                n = e - s + 1
                band = max(1, int(round(cfg.band_ratio * n)))
                outer = np.concatenate([a[max(0, s - band) : s], a[e + 1 : min(t, e + 1 + band)]])
                score = float(a[s : e + 1].mean()) - (float(outer.mean()) if outer.size else 0.0)
                cands.append(Interval(s, e, kind, score + cfg.class_weight * prob, k))
        cands = soft_nms(cands, cfg.soft_nms_sigma)
        lo, hi = cfg.macro_frames if c == 0 else cfg.micro_frames
        lo, hi = int(round(lo * scale)), int(round(hi * scale))
        cands = [p for p in cands if lo <= p.offset - p.onset + 1 <= hi and p.score >= cfg.score_floor]
        cands = hard_nms(cands, cfg.final_nms_iou)[: cfg.max_per_video[c]]
        out += cands
    return out
