"""torch.compile backend: the bucketed static-buffer step of :mod:`engine.backends.cuda_graph`
with its body compiled by TorchInductor (one specialisation per batch bucket, no recompiles
in steady state).

* On CUDA the compiled body is the few-kernel :class:`engine.backends.packed.PackedStep`,
  captured in one CUDA graph per bucket together with its host <-> device copies: Inductor
  alone still launches every kernel from Python (about 1 ms a step on an H100 host, measured),
  the graph removes that. Needs Triton (bundled with CUDA builds of torch).
* On the CPU it compiles ``PfesNet.step``'s body as is (needs a C++ compiler).

Compilation happens on a bucket's first use, or in ``warmup()``; expect seconds per bucket.
"""

from __future__ import annotations

from engine.backends.base import require_cuda
from engine.backends.cuda_graph import CudaGraphBackend
from engine.model import PfesNet

__all__ = ["CompiledBackend", "BACKEND"]


class CompiledBackend(CudaGraphBackend):
    name = "compile"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cpu",
                 buckets: tuple[int, ...] | None = None, mode: str | None = None):
        cuda = str(device).startswith("cuda")
        if cuda:
            require_cuda(self.name, device)
        super().__init__(net, max_streams, device, buckets, capture=cuda, compile_body=True,
                         copies_in_graph=cuda, packed=cuda, compile_mode=mode)
        self.precision = "fp32 inductor" + (", packed, CUDA graph" if cuda else "")


BACKEND = CompiledBackend
