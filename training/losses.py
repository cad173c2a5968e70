"""The P-FES training losses (method.md, "Losses"), one function each, for one video.

Shapes: ``a (T,)`` intensity in [0, 1], ``p (T, 2)`` apex sigmoids, ``f (T, C)`` backbone
features, ``y (T, 2)`` soft labels (macro, micro), masks ``(T,)`` bool.

Four terms come in two forms, chosen by ``LossWeights.*_form``: ``"reference"``, as the
reference code (KinopioIsAllIn/GIM) computes them, and ``"pfes"``, our variants (the defaults
of the ``pfes`` recipe). method.md, "Losses", describes both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pfes.errors import InputError

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
    "LOSS_FORMS",
]

LOSS_FORMS = ("reference", "pfes")


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
    # "reference": unnormalised dot products, log w_ij on the positives, every pair weighted by
    # w in the denominator, an unweighted mean over the positives, pooled over the batch;
    # "pfes": L2-normalised features, positives at weight 1 in the denominator, a w-weighted
    # mean over the positives, per video
    iac_form: str = "pfes"
    # "reference": negatives cost |offset - p|^gamma * log(1 - p), both terms a mean over all T
    # frames; "pfes": negatives cost p^gamma * log(min(1, 1 - p + offset)), a mean over the
    # labelled frames only
    apex_form: str = "pfes"
    # "reference": the sum of a over the video / the longest video of the training set (the
    # reference's mean over sequences padded to that length); "pfes": the mean over valid frames
    sparsity_form: str = "pfes"
    # "reference": the signed mean of a_{t+1} - a_t (about zero); "pfes": the mean |a_{t+1} - a_t|
    smoothness_form: str = "pfes"

    def __post_init__(self) -> None:
        for name in ("iac_form", "apex_form", "sparsity_form", "smoothness_form"):
            if getattr(self, name) not in LOSS_FORMS:
                raise InputError(f"{name} must be one of {LOSS_FORMS}, got {getattr(self, name)!r}")


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

    ``w.apex_form == "reference"``: a negative costs ``(1 - alpha) |offset - p|^gamma
    (-log(1 - p))``, unbounded as p -> 1, and both terms are summed and divided by all T frames
    (ignored ones included). ``"pfes"``: a negative costs nothing until its score exceeds
    ``apex_neg_offset``, i.e. its BCE is taken on ``1 - p + offset`` (clamped to 1), and the sum
    is divided by the number of labelled frames.
    """
    eps = 1e-6
    ref = w.apex_form == "reference"
    total = p.new_zeros(())
    for c, cw in ((0, 1.0), (1, w.apex_micro)):
        pc, tc = p[:, c], target[:, c]
        pos, neg = tc > 0.5, tc == 0
        n = pc.shape[0] if ref else int(pos.sum()) + int(neg.sum())
        if n == 0:
            continue
        al = w.apex_alpha[c]
        if ref:
            eps = 1e-5
            lp = -al * (1 - pc[pos]) ** w.apex_gamma * torch.log(pc[pos] + eps)
            ln = -(1 - al) * torch.abs(w.apex_neg_offset - pc[neg]) ** w.apex_gamma * torch.log(
                1 - pc[neg] + eps)
        else:
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
    """Intensity-aware contrastive loss over backbone features f: (N, C) (``w.iac_form``).

    "reference": logits ``f_i . f_j / temperature`` (minus each row's max), each pair's
    log-probability ``log(w_ij + 1e-6) + logit_ij - log(sum_{k != i} w_ik exp(logit_ik) + 1e-6)``,
    averaged without weights over each anchor's positives, the anchors (all of them, those
    without positives counting 0) averaged, times ``-temperature / base_temperature``.
    "pfes": the same on L2-normalised features, positives at weight 1 in the denominator and a
    w-weighted mean over the positives; anchors without positives are left out.
    """
    n = f.shape[0]
    if n < 2:
        return f.new_zeros(())
    eye = torch.eye(n, dtype=torch.bool, device=f.device)
    weight, pos = iac_pair_weights(cat, inten)
    pos = pos & ~eye
    scale = w.iac_temperature / w.iac_base_temperature
    if w.iac_form == "reference":
        logits = f @ f.T / w.iac_temperature
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        den = (torch.exp(logits) * weight).masked_fill(eye, 0.0).sum(dim=1, keepdim=True)
        log_prob = torch.log(weight + 1e-6) + logits - torch.log(den + 1e-6)
        posf = pos.to(f.dtype)
        mean_pos = (posf * log_prob).sum(dim=1) / (posf.sum(dim=1) + 1e-6)
        return -scale * mean_pos.mean()
    z = torch.nn.functional.normalize(f, dim=1)
    logits = z @ z.T / w.iac_temperature
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
    return scale * per.mean()


def reward_term(a: Tensor, y: Tensor, w: LossWeights = LossWeights()) -> Tensor:
    """-0.4 x mean a on macro frames with y > 0.5, -0.6 on micro; empty sets contribute 0."""
    total = a.new_zeros(())
    for c in (0, 1):
        m = y[:, c] > 0.5
        if bool(m.any()):
            total = total - w.reward[c] * a[m].mean()
    return total


def sparsity_term(a: Tensor, valid: Tensor, form: str = "pfes", padded_frames: int = 0) -> Tensor:
    """Sparsity (weighted by ``LossWeights.sparsity`` by the caller).

    "pfes": the mean intensity over valid frames. "reference": the sum over all T frames of the
    video divided by ``padded_frames`` (the longest training video; the reference averages over
    sequences padded to it, so a short video's frames weigh T / padded_frames of a long one's).
    The padded frames' own outputs are left out: after a video's end they touch no real frame.
    """
    if form == "reference":
        return a.sum() / max(int(padded_frames), a.shape[0], 1)
    return a[valid].mean() if bool(valid.any()) else a.new_zeros(())


def smoothness_term(a: Tensor, form: str = "pfes") -> Tensor:
    """"pfes": mean |a_{t+1} - a_t| (total variation); "reference": the signed mean of
    a_{t+1} - a_t, which telescopes to (a_T - a_1) / (T - 1)."""
    if a.shape[0] < 2:
        return a.new_zeros(())
    d = a[1:] - a[:-1]
    return torch.mean(d) if form == "reference" else torch.mean(torch.abs(d))
