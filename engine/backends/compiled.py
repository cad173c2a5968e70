"""torch.compile backend: the bucketed static-buffer step of :mod:`engine.backends.cuda_graph`
with its body compiled by TorchInductor (one specialisation per batch bucket, no recompiles
in steady state). Runs on the CPU (needs a C++ compiler) and on CUDA (needs Triton, bundled
with CUDA builds of torch). Compilation happens on a bucket's first use, or in ``warmup()``;
expect seconds to tens of seconds per bucket.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.backends.base import allow_recompiles, require_cuda
from engine.backends.cuda_graph import BucketedStep
from engine.model import PfesNet

__all__ = ["CompiledBackend", "BACKEND"]


class CompiledBackend(BucketedStep):
    name = "compile"
    precision = "fp32 inductor"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cpu",
                 buckets: tuple[int, ...] | None = None, mode: str | None = None):
        if str(device).startswith("cuda"):
            require_cuda(self.name, device)
        super().__init__(net, max_streams, device, buckets)
        allow_recompiles(len(self.buckets))
        self._compiled = torch.compile(self._body, dynamic=False, mode=mode)

    def _make_runner(self, b: int) -> Callable[[], None]:
        inp, out = self._dev_in[b], self._dev_out[b]
        self._compiled(inp, out)  # compile now, on the scratch slot, not inside a real step
        return lambda: self._compiled(inp, out)


BACKEND = CompiledBackend
