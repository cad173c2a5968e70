"""Subject splits: leave-one-subject-out with a nested split for every selection.

The held-out subject of a fold is never used for training, epoch choice or thresholds: those
are chosen on ``inner_val`` subjects carved out of the fold's training subjects. This is the
only way the trainer selects anything (method.md, "Honest model selection").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pfes.errors import InputError

__all__ = ["Split", "nested_split", "loso_folds", "kfold_folds"]


@dataclass(frozen=True)
class Split:
    """Subjects of one fold. ``test`` may be empty (a final model trained on all subjects)."""

    inner_train: tuple[str, ...]
    inner_val: tuple[str, ...]
    test: tuple[str, ...] = ()


def nested_split(subjects: Sequence[str], val_fraction: float = 0.2, seed: int = 0,
                 test: Sequence[str] = ()) -> Split:
    """Split training subjects into inner-train and inner-val (at least one each)."""
    pool = sorted(set(subjects) - set(test))
    if len(pool) < 2:
        raise InputError(f"need at least 2 training subjects for a nested split, have {len(pool)}")
    if not 0 < val_fraction < 1:
        raise InputError("val_fraction must be in (0, 1)")
    rng = np.random.default_rng(seed)
    order = [pool[i] for i in rng.permutation(len(pool))]
    n_val = min(len(pool) - 1, max(1, int(round(val_fraction * len(pool)))))
    return Split(tuple(sorted(order[n_val:])), tuple(sorted(order[:n_val])), tuple(sorted(test)))


def loso_folds(subjects: Sequence[str], val_fraction: float = 0.2, seed: int = 0) -> list[Split]:
    """One fold per subject; each fold's selection subjects come from the others."""
    subs = sorted(set(subjects))
    return [nested_split(subs, val_fraction, seed + i, test=[s]) for i, s in enumerate(subs)]


def kfold_folds(subjects: Sequence[str], k: int, val_fraction: float = 0.2, seed: int = 0) -> list[Split]:
    """k folds of held-out subjects (a cheaper LOSO for large subject counts)."""
    subs = sorted(set(subjects))
    if not 2 <= k <= len(subs):
        raise InputError(f"k must be in [2, {len(subs)}], got {k}")
    rng = np.random.default_rng(seed)
    order = [subs[i] for i in rng.permutation(len(subs))]
    return [nested_split(subs, val_fraction, seed + i, test=order[i::k]) for i in range(k)]
