"""The MEGC spotting evaluator.

Per class, within each video, predictions are taken in descending score order; each becomes a
true positive if its IoU with a not-yet-matched ground-truth interval of the same class is
>= 0.5 (the best such match), else a false positive. IoU is on inclusive frame counts:
``|A ∩ B| / |A ∪ B|`` with ``|[s, e]| = e - s + 1``. TP, FP and the number of ground truths N
are pooled over all videos, then::

    precision = TP / (TP + FP),  recall = TP / N,  F1 = 2 TP / (TP + FP + N)

"overall" pools both classes. Empty sets give 0 for the undefined ratios.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.detector import Instance

__all__ = ["Interval", "iou", "match_video", "evaluate", "format_table", "to_intervals",
           "CLASSES"]

CLASSES = ("macro", "micro")


@dataclass(frozen=True)
class Interval:
    """A labelled or predicted interval; frames inclusive. ``score`` is ignored for truth."""

    onset: int
    offset: int
    kind: str
    score: float = 1.0
    apex: int | None = None


def to_intervals(instances: Iterable[Instance]) -> list[Interval]:
    """Detector instances as scored intervals."""
    return [Interval(i.onset, i.offset, i.kind, i.score, i.apex) for i in instances]


def iou(a0: int, a1: int, b0: int, b1: int) -> float:
    """IoU of inclusive frame intervals [a0, a1] and [b0, b1]."""
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    union = (a1 - a0 + 1) + (b1 - b0 + 1) - inter
    return inter / union


def match_video(
    preds: Sequence[Interval], truth: Sequence[Interval], kind: str, thr: float = 0.5
) -> tuple[int, int, int]:
    """(TP, FP, N) for one class in one video."""
    gts = [g for g in truth if g.kind == kind]
    ps = sorted((p for p in preds if p.kind == kind), key=lambda p: -p.score)
    used = [False] * len(gts)
    tp = fp = 0
    for p in ps:
        best, best_j = -1.0, -1
        for j, g in enumerate(gts):
            if used[j]:
                continue
            v = iou(p.onset, p.offset, g.onset, g.offset)
            if v >= thr and v > best:
                best, best_j = v, j
        if best_j >= 0:
            used[best_j] = True
            tp += 1
        else:
            fp += 1
    return tp, fp, len(gts)


def _stats(tp: int, fp: int, n: int) -> dict:
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / n if n else 0.0
    denom = tp + fp + n
    f1 = 2 * tp / denom if denom else 0.0
    return {"tp": tp, "fp": fp, "n": n, "precision": prec, "recall": rec, "f1": f1}


def evaluate(
    preds: Mapping[str, Iterable[Interval]],
    truth: Mapping[str, Iterable[Interval]],
    thr: float = 0.5,
) -> dict:
    """Pool over videos. ``preds`` / ``truth``: video name -> intervals.

    Videos present only in ``truth`` count their ground truths as misses; videos present only in
    ``preds`` count their predictions as false positives. Returns
    ``{"macro": {...}, "micro": {...}, "overall": {...}}`` with tp, fp, n, precision, recall, f1.
    """
    videos = set(preds) | set(truth)
    totals = {c: [0, 0, 0] for c in CLASSES}
    for v in videos:
        p = list(preds.get(v, ()))
        t = list(truth.get(v, ()))
        for c in CLASSES:
            tp, fp, n = match_video(p, t, c, thr)
            totals[c][0] += tp
            totals[c][1] += fp
            totals[c][2] += n
    out = {c: _stats(*totals[c]) for c in CLASSES}
    out["overall"] = _stats(*(sum(totals[c][i] for c in CLASSES) for i in range(3)))
    return out


def format_table(result: Mapping[str, Mapping], title: str | None = None) -> str:
    """The MEGC table as fixed-width text."""
    lines = [title] if title else []
    lines.append(f"{'class':<8} {'TP':>5} {'FP':>5} {'N':>5} {'prec':>6} {'recall':>6} {'F1':>6}")
    for c in (*CLASSES, "overall"):
        r = result[c]
        lines.append(
            f"{c:<8} {r['tp']:>5} {r['fp']:>5} {r['n']:>5} "
            f"{r['precision']:>6.3f} {r['recall']:>6.3f} {r['f1']:>6.3f}"
        )
    return "\n".join(lines)
