"""TensorRT backend through torch-tensorrt (dynamo path, fp16, engine cache on disk).

The exported step (:class:`engine.export.StepModule`) is compiled with::

    torch_tensorrt.compile(module, ir="dynamo", inputs=[Input(min, opt, max) ...],
                           enabled_precisions={torch.half}, min_block_size=1,
                           cache_built_engines=True, reuse_cached_engines=True,
                           engine_cache_dir=<dir>)

with a dynamic batch dimension from 1 to ``max_streams``; engines built once are reused from
``engine_cache_dir`` (default ``~/.cache/pfes/trt``) by later processes. The bucketed
static-buffer machinery of :mod:`engine.backends.cuda_graph` gathers and scatters the slots'
state around the TensorRT call.

torch-tensorrt comes only from NVIDIA's package index and is an optional extra
(``pip install pfes[tensorrt]``). It was not installed on any machine this code was written
or tested on: this file follows the documented API (torch-tensorrt 2.5+) and has not been run.
fp16 outputs differ from the fp32 reference by about 1e-3; the stated tolerance is 1e-2.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

import torch

from engine.backends.cuda_graph import BucketedStep, require_cuda
from engine.export import StepModule, state_shapes
from engine.model import PfesNet
from pfes.errors import DependencyError

__all__ = ["TensorrtBackend", "BACKEND", "import_trt", "compile_step", "TOLERANCE"]

TOLERANCE = 1e-2  # fp16 vs the fp32 reference
DEFAULT_CACHE_DIR = Path(os.environ.get("PFES_TRT_CACHE", "~/.cache/pfes/trt")).expanduser()


def import_trt():
    """``torch_tensorrt``, or DependencyError with the install hint."""
    try:
        import torch_tensorrt
    except ImportError as e:
        raise DependencyError(
            "the tensorrt backend needs torch-tensorrt, which is not installed: "
            "pip install pfes[tensorrt] (wheels come from NVIDIA's index; needs a CUDA GPU)"
        ) from e
    return torch_tensorrt


def compile_step(net: PfesNet, max_batch: int, cache_dir: str | os.PathLike | None = None,
                 opt_batch: int | None = None, device: str = "cuda"):
    """Compile ``net``'s step for batches 1..max_batch. Returns (module, example inputs)."""
    trt = import_trt()
    require_cuda("tensorrt", device)
    cache = Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    step_module = StepModule(copy.deepcopy(net)).to(device).eval()
    f = net.cfg.in_features
    opt = opt_batch or min(max_batch, 64)

    def spec(*shape, dtype=torch.float32):
        return trt.Input(min_shape=(1, *shape), opt_shape=(opt, *shape),
                         max_shape=(max_batch, *shape), dtype=dtype)

    shapes = state_shapes(net)
    inputs = [spec(f), spec(dtype=torch.bool), *(spec(c, p) for c, p in shapes)]
    examples = [torch.zeros(opt, f, device=device), torch.ones(opt, dtype=torch.bool, device=device),
                *(torch.zeros(opt, c, p, device=device) for c, p in shapes)]
    try:
        module = trt.compile(
            step_module, ir="dynamo", inputs=inputs, enabled_precisions={torch.half},
            min_block_size=1, cache_built_engines=True, reuse_cached_engines=True,
            engine_cache_dir=str(cache),
        )
    except Exception as e:  # translate where the third-party error enters
        raise DependencyError(f"torch-tensorrt could not compile the step: {e}") from e
    return module, examples


class TensorrtBackend(BucketedStep):
    name = "tensorrt"
    precision = "fp16 (TensorRT)"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cuda",
                 buckets: tuple[int, ...] | None = None, cache_dir: str | None = None):
        import_trt()  # the install hint first: it is the more useful message
        require_cuda(self.name, device)
        super().__init__(net, max_streams, device, buckets)
        self.trt_step, _ = compile_step(net, max(self.buckets), cache_dir, device=device)
        self.has_state = [blk.pad > 0 for blk in self.net.layers]

    def _body(self, inp: torch.Tensor, out: torch.Tensor) -> None:
        f = self.in_features
        idx = inp[:, f + 1].long()
        state = [buf.index_select(0, idx) for buf, h in zip(self.states, self.has_state,
                                                            strict=True) if h]
        res = self.trt_step(inp[:, :f].contiguous(), inp[:, f] > 0.5, *state)
        bufs = [buf for buf, h in zip(self.states, self.has_state, strict=True) if h]
        for buf, nb in zip(bufs, res[2:], strict=True):
            buf.index_copy_(0, idx, nb.to(buf.dtype))
        out.copy_(torch.cat([res[0].unsqueeze(1), res[1]], dim=1).to(out.dtype))

    def _make_runner(self, b: int) -> Callable[[], None]:
        inp, out = self._dev_in[b], self._dev_out[b]
        return lambda: self._body(inp, out)


BACKEND = TensorrtBackend
