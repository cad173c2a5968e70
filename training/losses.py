"""The P-FES training losses (method.md, "Losses"), one function each, for one video.

Shapes: ``a (T,)`` intensity in [0, 1], ``p (T, 2)`` apex sigmoids, ``f (T, C)`` backbone
features, ``y (T, 2)`` soft labels (macro, micro), masks ``(T,)`` bool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "LOSS_PRESETS",
    "LossWeights",
    "select_negatives",
    "apex_targets",
    "intensity_loss",
    "apex_focal_loss",
    "iac_pair_weights",
    "iac_loss",
    "reward_term",
    "sparsity_term",
    "smoothness_term",
]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the reference (CAS(ME)^2 values); SAMM-LV used iac 2e-6, sparsity 0.3."""

    intensity: float = 1.0
    apex: float = 1.0
    apex_micro: float = 1.8
    apex_alpha: tuple[float, float] = (0.90, 0.93)
    apex_gamma: float = 1.0
    apex_neg_offset: float = 0.25
    apex_neighbour_frames: int = 6
    iac: float = 1.4e-5
    iac_temperature: float = 0.5
    iac_base_temperature: float = 0.07
    reward: tuple[float, float] = (0.4, 0.6)
    sparsity: float = 2.5
    smoothness: float = 0.1


# The reference's per-dataset weights (method.md): `pfes train/crossval --loss-weights NAME`.
LOSS_PRESETS: dict[str, LossWeights] = {
    "casme2": LossWeights(),
    "samm-lv": LossWeights(iac=2e-6, sparsity=0.3),
}


def select_negatives(a: np.ndarray, expressive: np.ndarray, valid: np.ndarray,
                     far: np.ndarray | None = None, hard_fraction: float = 0.0) -> np.ndarray:
    """(T,) bool: k unlabelled valid frames as negatives, k = #expressive (1:1).

    By default the k lowest-intensity ones (the reference's choice: with point labels an
    unlabelled frame near a point may still belong to an expression). With ``far`` (T,) bool,
    frames that no labelled instance can reach (farther from every point than the longest
    expression), ``hard_fraction`` of the k are instead the *highest*-intensity far frames:
    certain background the network currently scores high (blinks, fidgets, talking).
    """
    k = int(expressive.sum())
    cand = np.flatnonzero(~expressive & valid)
    neg = np.zeros(a.shape[0], dtype=bool)
    if k == 0 or cand.size == 0:
        return neg
    k = min(k, cand.size)
    if far is not None and hard_fraction > 0:
        hard = np.flatnonzero(far & ~expressive & valid)
        n_hard = min(int(round(hard_fraction * k)), hard.size)
        if n_hard:
            neg[hard[np.argsort(-a[hard], kind="stable")[:n_hard]]] = True
            k -= n_hard
            cand = cand[~neg[cand]]
    if k > 0 and cand.size:
        neg[cand[np.argsort(a[cand], kind="stable")[:k]]] = True
    return neg


def apex_targets(
    y: np.ndarray, apex_pos: np.ndarray, negatives: np.ndarray, neighbour: int = 6
) -> np.ndarray:
    """(T, 2) float32 targets for the apex branch: 1 pseudo-apex, 0 negative, -1 ignored.

    0 on sampled negatives and on frames within +-``neighbour`` of any frame whose pseudo-label
    exceeds 0.5 (so the branch fires at the apex, not across the whole instance); 1 on
    pseudo-apex frames of that class (taking precedence); ignored elsewhere.
    """
    t = y.shape[0]
    strong = (y > 0.5).any(axis=1).astype(np.float32)
    if neighbour > 0 and strong.any():
        kernel = np.ones(2 * neighbour + 1, dtype=np.float32)
        near = np.convolve(strong, kernel, mode="same") > 0
    else:
        near = strong > 0
    tgt = np.full((t, 2), -1.0, dtype=np.float32)
    tgt[negatives | near] = 0.0
    tgt[apex_pos] = 1.0
    return tgt


def _masked_mse(a: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    if not bool(mask.any()):
        return a.new_zeros(())
    return torch.mean((a[mask] - y[mask]) ** 2)


def intensity_loss(a: Tensor, y: Tensor, negatives: Tensor) -> Tensor:
    """MSE to macro labels + MSE to micro labels + MSE to 0 on negatives, each a mean of its set."""
    return (
        _masked_mse(a, y[:, 0], y[:, 0] > 0)
        + _masked_mse(a, y[:, 1], y[:, 1] > 0)
        + _masked_mse(a, torch.zeros_like(a), negatives)
    )


def apex_focal_loss(p: Tensor, target: Tensor, w: LossWeights = LossWeights()) -> Tensor:
    """Focal-style BCE per class (gamma, alpha), micro term weighted ``apex_micro``.

    Negatives carry a smoothing offset: a negative costs nothing until its score exceeds
    ``apex_neg_offset``, i.e. its BCE is taken on ``1 - p + offset`` (clamped to 1).
    """
    eps = 1e-6
    total = p.new_zeros(())
    for c, cw in ((0, 1.0), (1, w.apex_micro)):
        pc, tc = p[:, c], target[:, c]
        pos, neg = tc > 0.5, tc == 0
        n = int(pos.sum()) + int(neg.sum())
        if n == 0:
            continue
        al = w.apex_alpha[c]
        lp = -al * (1 - pc[pos]) ** w.apex_gamma * torch.log(pc[pos].clamp_min(eps))
        qn = (1 - pc[neg] + w.apex_neg_offset).clamp(max=1.0)
        ln = -(1 - al) * pc[neg] ** w.apex_gamma * torch.log(qn.clamp_min(eps))
        total = total + cw * (lp.sum() + ln.sum()) / n
    return total


def iac_pair_weights(cat: Tensor, inten: Tensor) -> tuple[Tensor, Tensor]:
    """Pair weights of the intensity-aware contrastive loss.

    cat: (N,) long, 0 neutral, 1 micro, 2 macro; inten: (N,) intensity (0 for neutral).
    Returns (weight (N, N), positive (N, N) bool). Same category pairs are positives:
    neutral-neutral weight 1, same expression class ``1 - |I_i - I_j|``. Different categories
    are negatives, weighted ``|I_i - I_j|`` (neutral vs expression, macro vs micro), so a faint
    expression is pushed away from neutral less than a strong one.
    """
    di = torch.abs(inten[:, None] - inten[None, :])
    same = cat[:, None] == cat[None, :]
    both_neutral = same & (cat[:, None] == 0)
    w = torch.where(same, 1.0 - di, di)
    w = torch.where(both_neutral, torch.ones_like(w), w)
    return w, same


def iac_loss(f: Tensor, cat: Tensor, inten: Tensor, w: LossWeights = LossWeights()) -> Tensor:
    """Weighted supervised contrastive loss over L2-normalised backbone features f: (N, C)."""
    n = f.shape[0]
    if n < 2:
        return f.new_zeros(())
    z = torch.nn.functional.normalize(f, dim=1)
    logits = z @ z.T / w.iac_temperature
    eye = torch.eye(n, dtype=torch.bool, device=f.device)
    weight, pos = iac_pair_weights(cat, inten)
    pos = pos & ~eye
    # denominator: positives at weight 1, negatives at their intensity-gap weight
    den_w = torch.where(pos, torch.ones_like(weight), weight).masked_fill(eye, 0.0)
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    log_den = torch.log((den_w * torch.exp(logits)).sum(dim=1).clamp_min(1e-12))
    log_prob = logits - log_den[:, None]
    pw = (weight * pos).to(f.dtype)
    has = pw.sum(dim=1) > 0
    if not bool(has.any()):
        return f.new_zeros(())
    per = -(pw * log_prob).sum(dim=1)[has] / pw.sum(dim=1)[has]
    return (w.iac_temperature / w.iac_base_temperature) * per.mean()


def reward_term(a: Tensor, y: Tensor, w: LossWeights = LossWeights()) -> Tensor:
    """-0.4 x mean a on macro frames with y > 0.5, -0.6 on micro; empty sets contribute 0."""
    total = a.new_zeros(())
    for c in (0, 1):
        m = y[:, c] > 0.5
        if bool(m.any()):
            total = total - w.reward[c] * a[m].mean()
    return total


def sparsity_term(a: Tensor, valid: Tensor) -> Tensor:
    """Mean intensity over valid frames (weighted by ``LossWeights.sparsity`` by the caller)."""
    return a[valid].mean() if bool(valid.any()) else a.new_zeros(())


def smoothness_term(a: Tensor) -> Tensor:
    """Mean |a_{t+1} - a_t| (the reference writes the signed mean; we take the absolute value)."""
    if a.shape[0] < 2:
        return a.new_zeros(())
    return torch.mean(torch.abs(a[1:] - a[:-1]))
