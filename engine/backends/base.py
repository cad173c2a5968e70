"""The one small interface every inference backend speaks.

A backend owns the streaming state of ``max_streams`` slots and steps any subset of them in
one batched call. It knows nothing of slot allocation, readiness or flushing: that lives in
:class:`engine.runtime.StreamEngine`, which is the only caller.

* ``reset(slots)``: zero the state of these slots (a new stream joins).
* ``step(slots, x, valid) -> (intensity, apex)``: one frame for each listed slot.
  ``slots: (n,) int64`` distinct slot numbers in ``[0, max_streams)``, ``x: (n, F) float32``,
  ``valid: (n,) bool``. Returns ``intensity (n,) float32`` and ``apex (n, 2) float32`` for
  frame ``t - D`` of each slot (numpy, on the host). Unlisted slots keep their state.

Outputs must equal :meth:`engine.model.PfesNet.step` (and so ``PfesNet.forward``) to 1e-5 on
the CPU; GPU backends state their tolerance.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch

from engine.model import PfesNet
from pfes.errors import DependencyError, InputError

__all__ = ["Backend", "bucket_for", "default_buckets", "require_cuda", "allow_recompiles"]


class Backend(ABC):
    """Base of every backend; subclasses set ``name`` and implement ``reset`` and ``step``."""

    name: ClassVar[str] = "?"
    #: what the outputs are computed in, printed next to benchmark numbers
    precision: str = "fp32"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cpu"):
        if max_streams < 1:
            raise InputError(f"max_streams must be >= 1, got {max_streams}")
        self.cfg = net.cfg
        self.max_streams = int(max_streams)
        self.device = str(device)

    @abstractmethod
    def reset(self, slots: np.ndarray) -> None:
        """Zero the state of ``slots`` ((n,) int64)."""

    @abstractmethod
    def step(
        self, slots: np.ndarray, x: np.ndarray, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One frame per listed slot; see the module docstring for shapes."""

    def describe(self) -> str:
        """One line for benchmark tables: backend, device, precision."""
        return f"{self.name} on {self.device} ({self.precision})"


def default_buckets(max_streams: int) -> tuple[int, ...]:
    """Batch buckets for static-shape backends: powers of two up to ``max_streams``."""
    out, b = [], 1
    while b < max_streams:
        out.append(b)
        b *= 2
    out.append(int(max_streams))
    return tuple(out)


def bucket_for(n: int, buckets: tuple[int, ...]) -> int:
    """Smallest bucket that holds ``n`` rows; raises InputError if none does."""
    for b in buckets:
        if b >= n:
            return b
    raise InputError(f"batch of {n} streams exceeds the largest bucket {buckets[-1]}")


def require_cuda(backend: str, device: str) -> None:
    """Raise DependencyError unless ``device`` is a usable CUDA device."""
    if not str(device).startswith("cuda"):
        raise DependencyError(
            f"the {backend} backend runs on a CUDA GPU only (device {device!r}); "
            "use --backend numpy, onnxruntime or torch on the CPU"
        )
    if not torch.cuda.is_available():
        raise DependencyError(
            f"the {backend} backend needs a CUDA GPU and a CUDA build of torch, but "
            f"torch.cuda.is_available() is False (torch {torch.__version__}); "
            "use --backend numpy, onnxruntime or torch on this machine"
        )


def allow_recompiles(n: int) -> None:
    """Let torch.compile keep ``n`` more specialisations of one function.

    Each batch bucket (and each backend instance: guards include ``self``) is one entry in the
    cache of the shared ``_body`` code object; past dynamo's limit (8 by default) it would
    silently fall back to eager, which would make benchmarks lie.
    """
    import torch._dynamo.config as cfg

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(int(getattr(cfg, name)), 8) + n)
            break
