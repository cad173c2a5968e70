"""Offline proposals (method.md, "Proposals"): the reference's multi-threshold search.

For each class and threshold, runs of frames with intensity above the threshold become
candidates; the apex is the run's argmax; a candidate is kept when the apex classifier's score
of that class exceeds ``min_class_prob``; its score is ``mean inside - mean of an outer band
(band_ratio x length on each side) + 0.2 x class score``. Then Gaussian soft-NMS, duration
filters, a score floor per class, a final hard NMS and a per-video cap per class.

``PROPOSAL_PRESETS`` holds the reference's per-dataset settings (score floors CAS(ME)^2
0.5/0.5, SAMM-LV 0.4/0.3, CAS(ME)^3 0.3/0.3; caps 8/2, 8/8, 8/2; the duration filter counted
with an exclusive end, so a micro run must span 8-14 frames; the outer band's bounds truncated;
the final NMS dropping overlaps above 0.5) and ``"pfes"``, our earlier single floor of 0.3.
The reference's final NMS skips the candidate after each one it deletes (it deletes inside a
loop over indices), which can keep an overlapping duplicate; ours does not copy that.

The live system uses the online detector (``engine.detector``) instead; ``pfes eval
--proposals offline`` scores this path for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pfes.errors import InputError
from training.evaluate import Interval, iou

__all__ = ["ProposalConfig", "PROPOSAL_PRESETS", "offline_proposals", "soft_nms", "hard_nms"]

CLASSES = ("macro", "micro")


@dataclass(frozen=True)
class ProposalConfig:
    """All constants of the offline search; durations in frames at ``fps_ref``."""

    thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    min_class_prob: float = 0.5
    band_ratio: float = 0.2
    # "round": each outer band is max(1, round(ratio x length)) frames; "truncate": the
    # reference's int() of the band's bounds (ceil(ratio x length) before, floor after)
    band_bounds: str = "round"
    class_weight: float = 0.2
    soft_nms_sigma: float = 0.3
    macro_frames: tuple[int, int] = (15, 240)
    micro_frames: tuple[int, int] = (9, 15)
    # "inclusive": a run of n frames counts n; "exclusive": n + 1, as the reference counts
    # end - start + 1 with an exclusive end
    duration_end: str = "inclusive"
    fps_ref: float = 30.0
    score_floors: tuple[float, float] = (0.3, 0.3)  # macro, micro
    final_nms_iou: float = 0.5
    final_nms_strict: bool = False  # True: drop overlaps above the IoU (reference), else at or above
    max_per_video: tuple[int, int] = (8, 2)  # macro, micro (CAS(ME)^2)

    def __post_init__(self) -> None:
        if self.band_bounds not in ("round", "truncate"):
            raise InputError("band_bounds must be 'round' or 'truncate'")
        if self.duration_end not in ("inclusive", "exclusive"):
            raise InputError("duration_end must be 'inclusive' or 'exclusive'")


def _reference(floors: tuple[float, float], caps: tuple[int, int]) -> ProposalConfig:
    return ProposalConfig(band_bounds="truncate", duration_end="exclusive", score_floors=floors,
                          final_nms_strict=True, max_per_video=caps)


# `pfes eval --proposals offline --proposal-preset NAME`
PROPOSAL_PRESETS: dict[str, ProposalConfig] = {
    "pfes": ProposalConfig(),
    "casme2": _reference((0.5, 0.5), (8, 2)),
    "samm-lv": _reference((0.4, 0.3), (8, 8)),
    "casme3": _reference((0.3, 0.3), (8, 2)),
}


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


def hard_nms(props: list[Interval], thr: float, strict: bool = False) -> list[Interval]:
    """Greedy NMS in descending score: drop every proposal whose IoU with a kept one is at
    least ``thr`` (``strict``: above ``thr``). Every candidate is checked against every kept one."""
    out: list[Interval] = []
    for p in sorted(props, key=lambda p: -p.score):
        ious = [iou(p.onset, p.offset, q.onset, q.offset) for q in out]
        if all((v <= thr) if strict else (v < thr) for v in ious):
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
                if cfg.band_bounds == "truncate":
                    lo_b = max(0, int(s - cfg.band_ratio * n))
                    hi_b = min(t - 1, int(e + cfg.band_ratio * n))
                else:
                    band = max(1, int(round(cfg.band_ratio * n)))
                    lo_b, hi_b = max(0, s - band), min(t - 1, e + band)
                outer = np.concatenate([a[lo_b:s], a[e + 1 : hi_b + 1]])
                score = float(a[s : e + 1].mean()) - (float(outer.mean()) if outer.size else 0.0)
                cands.append(Interval(s, e, kind, score + cfg.class_weight * prob, k))
        cands = soft_nms(cands, cfg.soft_nms_sigma)
        lo, hi = cfg.macro_frames if c == 0 else cfg.micro_frames
        lo, hi = int(round(lo * scale)), int(round(hi * scale))
        extra = 1 if cfg.duration_end == "exclusive" else 0
        floor = cfg.score_floors[c]
        cands = [p for p in cands if lo <= p.offset - p.onset + 1 + extra <= hi and p.score >= floor]
        cands = hard_nms(cands, cfg.final_nms_iou, cfg.final_nms_strict)[: cfg.max_per_video[c]]
        out += cands
    return out
