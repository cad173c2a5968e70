"""Pseudo-labels from point supervision: GIM and its warm-up stages, plus the two baselines.

Everything here works on one video at a time, in numpy, from the network's *detached* outputs
of the current epoch (method.md, "GIM"):

* epoch 0: hard labels, macro ``[p-5, p+5)``, micro ``[p-3, p+3)``;
* epochs 1-4: feature-similarity labels around the raw point, ``d = 1`` (epochs 1-2) or 2
  (3-4), window ``[p-2d, p+2d]`` macro / ``[p-d, p+d]`` micro,
  ``y_t = exp(-||g_t - g_p||^2 / (2 s^2))`` with ``s^2`` the window mean of ``||g_t - g_p||^2``;
* epoch 5 on: full GIM: pseudo-apex = argmax intensity near the point, reliability threshold
  ``theta = max(0.5, 0.8 - (epoch - 5) / 80)``, duration estimate from the frames above theta,
  a feature-space Gaussian over the instance-adaptive span, and pseudo-apex labels for the
  apex branch.

Two variants (``GimConfig.variant``): ``"paper"``, the clean Gaussian the paper describes, and
``"released"``, the reference code's train-mode behaviour: its heads carry dropout 0.7 before
the sigmoids and on the projected feature, and it builds the labels from those train-mode
outputs. We emulate that on the detached outputs (:func:`released_outputs`): 70% of the
frames' intensity logits become 0 (a = 0.5) and the rest are scaled by 1 / 0.3, and each
feature element is dropped or scaled the same way. The distances to the pseudo-apex are then
dominated by the dropout noise, so the labels come out close to a flat ~0.6 window around the
argmax, of the minimum width (few frames stay above the reliability threshold).

Baselines with the same output: ``hard`` (epoch-0 labels at every epoch, apex at the point)
and ``full`` (ground-truth intervals labelled 1, apex at the true apex).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Point", "PseudoLabels", "GimConfig", "gim_labels", "hard_labels", "full_labels",
           "theta_for_epoch", "gim_span", "released_outputs", "GIM_VARIANTS"]

GIM_VARIANTS = ("paper", "released")

MACRO, MICRO = 0, 1


@dataclass(frozen=True)
class Point:
    """One point label. ``cls`` 0 = macro, 1 = micro. ``onset``/``offset``/``apex`` are only
    used by the ``full`` baseline (ground truth); point supervision never reads them."""

    frame: int
    cls: int
    onset: int = -1
    apex: int = -1
    offset: int = -1


@dataclass(frozen=True)
class GimConfig:
    """Constants of method.md, in frames at about 30 fps."""

    k_frames: tuple[int, int] = (32, 16)  # k_c: macro, micro
    d_max_frames: tuple[int, int] = (36, 16)  # D_max
    hard_half_frames: tuple[int, int] = (5, 3)  # epoch-0 [p-h, p+h)
    apex_half_frames: tuple[int, int] = (2, 1)  # pseudo-apex label half-width
    full_gim_epoch: int = 5
    theta_start: float = 0.8
    theta_floor: float = 0.5
    theta_decay_epochs: float = 80.0
    # classes whose points keep the epoch-0 hard windows at every epoch (GIM for the others):
    # () = the paper (GIM for both); (MICRO,) = ``pfes train --gim-micro hard``
    hard_classes: tuple[int, ...] = ()
    # classes whose pseudo-apex stays at the point (no argmax search; span and Gaussian as GIM):
    # (MICRO,) = ``pfes train --gim-micro point``, an ablation of the two halves of GIM
    fixed_apex_classes: tuple[int, ...] = ()
    # "paper": labels from the clean outputs; "released": from dropout-0.7 train-mode outputs
    variant: str = "paper"
    released_dropout: float = 0.7


@dataclass
class PseudoLabels:
    """Per-frame targets for one video of T frames.

    y: (T, 2) float32 soft intensity labels (macro, micro columns; 0 outside every span).
    apex_pos: (T, 2) bool pseudo-apex frames (positives of the apex branch).
    apex_hat: list of (frame, cls) pseudo-apexes, one per point.
    """

    y: np.ndarray
    apex_pos: np.ndarray
    apex_hat: list[tuple[int, int]]

    @property
    def expressive(self) -> np.ndarray:
        """(T,) bool frames carrying any pseudo-label."""
        return (self.y > 0).any(axis=1)


def theta_for_epoch(epoch: int, cfg: GimConfig = GimConfig()) -> float:
    """Reliability threshold, decaying from 0.8 to a floor of 0.5."""
    th = cfg.theta_start - (epoch - cfg.full_gim_epoch) / cfg.theta_decay_epochs
    return float(max(cfg.theta_floor, min(cfg.theta_start, th)))


def released_outputs(
    a: np.ndarray, g: np.ndarray, rng: np.random.Generator, rank: np.ndarray | None = None,
    p: float = 0.7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, rank, g) as the released code's train-mode heads would give them: inverted dropout
    with drop probability ``p`` on each frame's intensity logit (``rank``, or the logit of
    ``a``) before the sigmoid, and on each element of the features g: (T, P)."""
    if rank is None:
        q = np.clip(a.astype(np.float64), 1e-7, 1 - 1e-7)
        rank = np.log(q / (1 - q))
    keep = 1.0 - p
    logit = np.where(rng.random(rank.shape) < keep, rank / keep, 0.0)
    g_drop = np.where(rng.random(g.shape) < keep, g / keep, 0.0)
    return 1.0 / (1.0 + np.exp(-logit)), logit, g_drop


def _clip(lo: int, hi: int, t: int) -> tuple[int, int]:
    return max(0, lo), min(t - 1, hi)


def _gauss(g: np.ndarray, center: int, lo: int, hi: int) -> np.ndarray:
    """exp(-||g_t - g_c||^2 / (2 s^2)) for t in [lo, hi]; s^2 = mean of the squared distances."""
    d2 = np.sum((g[lo : hi + 1] - g[center]) ** 2, axis=1)
    s2 = float(d2.mean())
    if s2 <= 1e-12:
        return np.ones_like(d2)
    return np.exp(-d2 / (2.0 * s2))


def _empty(t: int) -> PseudoLabels:
    return PseudoLabels(np.zeros((t, 2), np.float32), np.zeros((t, 2), bool), [])


def _mark_apex(lab: PseudoLabels, frame: int, cls: int, cfg: GimConfig) -> None:
    t = lab.y.shape[0]
    h = cfg.apex_half_frames[cls]
    lo, hi = _clip(frame - h, frame + h, t)
    lab.apex_pos[lo : hi + 1, cls] = True
    lab.apex_hat.append((frame, cls))


def _mark_hard(lab: PseudoLabels, frame: int, cls: int, cfg: GimConfig) -> None:
    """Label 1 on ``[frame - h, frame + h)`` and the pseudo-apex at the frame (clipped)."""
    t = lab.y.shape[0]
    h = cfg.hard_half_frames[cls]
    lo, hi = _clip(frame - h, frame + h - 1, t)
    lab.y[lo : hi + 1, cls] = 1.0
    _mark_apex(lab, min(max(frame, 0), t - 1), cls, cfg)


def hard_labels(points: Sequence[Point], t: int, cfg: GimConfig = GimConfig()) -> PseudoLabels:
    """Epoch-0 labels (and the ``hard`` baseline): 1 on [p-h, p+h), apex at the point."""
    lab = _empty(t)
    for pt in points:
        _mark_hard(lab, pt.frame, pt.cls, cfg)
    return lab


def full_labels(points: Sequence[Point], t: int, cfg: GimConfig = GimConfig()) -> PseudoLabels:
    """The ``full`` baseline: 1 on the ground-truth interval, apex at the true apex."""
    lab = _empty(t)
    for pt in points:
        if pt.onset < 0 or pt.offset < pt.onset:
            raise ValueError("full supervision needs onset/offset for every instance")
        lo, hi = _clip(pt.onset, pt.offset, t)
        lab.y[lo : hi + 1, pt.cls] = 1.0
        _mark_apex(lab, min(max(pt.apex if pt.apex >= 0 else pt.frame, 0), t - 1), pt.cls, cfg)
    return lab


def gim_span(
    a: np.ndarray, point: int, cls: int, epoch: int, cfg: GimConfig = GimConfig(),
    rank: np.ndarray | None = None,
) -> tuple[int, int]:
    """(pseudo-apex, half-width h) for one point from the intensity curve a: (T,).

    ``rank`` (T,), if given, is any strictly increasing function of a used for the argmax; the
    trainer passes the pre-sigmoid logit. The argmax is the same in exact arithmetic, but a
    float32 sigmoid saturates to 1.0 over whole plateaus, where a plain argmax takes the first
    frame; labels then follow that frame and the pseudo-apex drifts earlier every epoch.
    """
    t = a.shape[0]
    k = cfg.k_frames[cls]
    reach = 0 if cls in cfg.fixed_apex_classes else k // 4
    lo, hi = _clip(point - reach, point + reach, t)
    r = a if rank is None else rank
    apex = lo + int(np.argmax(r[lo : hi + 1]))
    theta = theta_for_epoch(epoch, cfg)
    lo2, hi2 = _clip(apex - k // 2, apex + k // 2, t)
    n = int(np.sum(a[lo2 : hi2 + 1] > theta))
    dur = min(cfg.d_max_frames[cls], max(k // 2, int(round(1.2 * n))))
    return apex, dur // 2


def gim_labels(
    a: np.ndarray,
    g: np.ndarray,
    points: Sequence[Point],
    epoch: int,
    cfg: GimConfig = GimConfig(),
    rank: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> PseudoLabels:
    """Point-supervised pseudo-labels for one video at ``epoch``.

    a: (T,) intensity, g: (T, P) projected features, both detached from the current network;
    rank: optional (T,) intensity logit for the pseudo-apex argmax (see :func:`gim_span`);
    rng: the dropout draws of ``cfg.variant == "released"`` (required there).
    """
    t = a.shape[0]
    if epoch <= 0:
        return hard_labels(points, t, cfg)
    if cfg.variant == "released":
        if rng is None:
            raise ValueError("the released GIM variant needs a random generator")
        a, rank, g = released_outputs(a, g, rng, rank, cfg.released_dropout)
    elif cfg.variant != "paper":
        raise ValueError(f"GIM variant must be one of {GIM_VARIANTS}, got {cfg.variant!r}")
    lab = _empty(t)
    for pt in points:
        p = min(max(pt.frame, 0), t - 1)
        c = pt.cls
        if c in cfg.hard_classes:
            _mark_hard(lab, p, c, cfg)
            continue
        if epoch < cfg.full_gim_epoch:
            d = 1 if epoch <= 2 else 2
            w = 2 * d if c == MACRO else d
            lo, hi = _clip(p - w, p + w, t)
            y = _gauss(g, p, lo, hi)
            lab.y[lo : hi + 1, c] = np.maximum(lab.y[lo : hi + 1, c], y)
            lab.apex_hat.append((p, c))
            continue
        apex, h = gim_span(a, p, c, epoch, cfg, rank)
        lo, hi = _clip(apex - h, apex + h, t)
        y = _gauss(g, apex, lo, hi)
        lab.y[lo : hi + 1, c] = np.maximum(lab.y[lo : hi + 1, c], y)
        _mark_apex(lab, apex, c, cfg)
    return lab
