"""CUDA-graph backend: the batched step captured once per batch bucket and replayed.

Launching the ~60 small kernels of one step costs far more than running them, so the whole
step (gather the listed slots' state, :meth:`PfesNet.step`, scatter the new state back, pack
the outputs) is captured into one CUDA graph per *bucket* (batch sizes 1, 2, 4, ... up to
``max_streams``) and replayed. Everything the graph touches is a static buffer:

* state: one ``(max_streams + 1, C, pad)`` tensor per layer on the GPU; row ``max_streams``
  is a scratch slot that padding rows of a partly filled bucket read and write;
* input: one ``(bucket, F + 2)`` float32 tensor per bucket holding ``[x, valid, slot]`` so one
  host-to-device copy (from pinned memory) carries the whole step; slot numbers are exact in
  float32 up to 2**24;
* output: one ``(bucket, 3)`` tensor ``[intensity, apex_macro, apex_micro]``, one copy back.

A step fills the pinned input, copies it in, replays the bucket's graph, copies the output
out and waits for it. With ``copies_in_graph=True`` the two copies are captured into the
graph as well (pinned host memory makes them capturable), so a step is one graph launch and
one wait. Buckets are captured lazily on first use; :meth:`warmup` captures all.

The same code runs without capture (``capture=False``): that is how its bucket and buffer
logic is tested on a machine without CUDA, and how :mod:`engine.backends.compiled` reuses it.
Matmuls run in fp32 (PyTorch's default ``allow_tf32 = False`` for matmul is left alone).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from engine.backends.base import (
    Backend,
    allow_recompiles,
    bucket_for,
    default_buckets,
    require_cuda,
)
from engine.backends.packed import PackedStep
from engine.model import PfesNet

__all__ = ["BucketedStep", "CudaGraphBackend", "BACKEND", "require_cuda"]


class BucketedStep(Backend):
    """Static-buffer, bucketed batched step; subclasses choose how a bucket body runs."""

    name = "bucketed"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cuda",
                 buckets: tuple[int, ...] | None = None, packed: bool = False):
        super().__init__(net, max_streams, device)
        self.net = copy.deepcopy(net).to(device).eval()
        self.buckets = tuple(buckets) if buckets else default_buckets(self.max_streams)
        self.scratch = self.max_streams
        f = net.cfg.in_features
        self.in_features = f
        #: the few-kernel rewrite of the step (engine.backends.packed), or None
        self._packed = PackedStep(self.net) if packed else None
        if self._packed is not None:
            self.states = [self._packed.init_state(self.max_streams + 1, device)]
        else:
            self.states = self.net.init_state(self.max_streams + 1)
        pin = self.device.startswith("cuda")
        self._dev_in, self._dev_out, self._host_in, self._host_out = {}, {}, {}, {}
        for b in self.buckets:
            self._dev_in[b] = torch.zeros(b, f + 2, device=device)
            self._dev_out[b] = torch.zeros(b, 3, device=device)
            self._host_in[b] = torch.zeros(b, f + 2, pin_memory=pin)
            self._host_out[b] = torch.zeros(b, 3, pin_memory=pin)
        self._runners: dict[int, Callable[[], None]] = {}
        #: True when the runner itself copies host -> device and back (captured copies)
        self._copies_captured = False

    # -- the body captured / compiled per bucket ----------------------------------------
    def _body(self, inp: torch.Tensor, out: torch.Tensor) -> None:
        """inp: (b, F + 2) [x, valid, slot]; writes out (b, 3); updates the state buffers."""
        if self._packed is not None:
            self._packed(self.states[0], inp, out)
            return
        f = self.in_features
        idx = inp[:, f + 1].long()
        state = [buf.index_select(0, idx) for buf in self.states]
        res, new = self.net.step(inp[:, :f], inp[:, f] > 0.5, state)
        for buf, nb in zip(self.states, new, strict=True):
            buf.index_copy_(0, idx, nb)
        out.copy_(torch.cat([res.intensity.unsqueeze(1), res.apex], dim=1))

    def _make_runner(self, b: int) -> Callable[[], None]:
        """A no-argument callable that runs bucket ``b`` on its static buffers (eager here)."""
        inp, out = self._dev_in[b], self._dev_out[b]
        return lambda: self._body(inp, out)

    def _runner(self, b: int) -> Callable[[], None]:
        run = self._runners.get(b)
        if run is None:
            with torch.inference_mode():
                for buf in (self._dev_in[b], self._host_in[b]):  # warm-up steps touch
                    buf.zero_()  # only the scratch slot, whichever buffer the body reads
                    buf[:, self.in_features + 1] = self.scratch
                run = self._runners[b] = self._make_runner(b)
        return run

    def warmup(self) -> None:
        """Prepare (capture / compile) every bucket now rather than on first use."""
        for b in self.buckets:
            self._runner(b)

    # -- Backend interface ----------------------------------------------------------------
    def reset(self, slots: np.ndarray) -> None:
        idx = torch.as_tensor(np.asarray(slots, dtype=np.int64), device=self.device)
        with torch.inference_mode():
            for buf in self.states:
                buf.index_fill_(0, idx, 0.0)

    def step(self, slots, x, valid):
        n = len(slots)
        b = bucket_for(n, self.buckets)
        run = self._runner(b)
        f = self.in_features
        host = self._host_in[b].numpy()
        host[:n, :f] = x
        host[:n, f] = valid
        host[:n, f + 1] = slots
        if n < b:  # padding rows: invalid zeros stepping the scratch slot
            host[n:] = 0.0
            host[n:, f + 1] = self.scratch
        with torch.inference_mode():
            if not self._copies_captured:
                self._dev_in[b].copy_(self._host_in[b], non_blocking=True)
            run()
            if not self._copies_captured:
                self._host_out[b].copy_(self._dev_out[b], non_blocking=True)
            if self.device.startswith("cuda"):
                torch.cuda.current_stream(self.device).synchronize()
        out = self._host_out[b].numpy()
        return out[:n, 0].copy(), out[:n, 1:3].copy()


class CudaGraphBackend(BucketedStep):
    """One captured CUDA graph per bucket.

    Defaults are the fastest eager variant measured on an H100 (benchmarks/RESULTS.md):
    ``packed=True`` captures :class:`engine.backends.packed.PackedStep` (fewer kernels than
    ``PfesNet.step``) and ``copies_in_graph=True`` captures the host <-> device copies too (one
    launch per step). ``capture=False`` runs the same buffers without a graph (tests on a CPU,
    and the CPU path of :mod:`engine.backends.compiled`); ``compile_body=True`` captures the
    torch.compile'd body (``compile_mode`` is passed to ``torch.compile``)."""

    name = "cuda-graph"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cuda",
                 buckets: tuple[int, ...] | None = None, capture: bool = True,
                 compile_body: bool = False, copies_in_graph: bool = True,
                 packed: bool = True, compile_mode: str | None = None):
        if capture:
            require_cuda(self.name, device)
        super().__init__(net, max_streams, device, buckets, packed=packed)
        self.capture = capture
        self._compiled = compile_body
        if compile_body:
            allow_recompiles(len(self.buckets))
            self._body_fn = torch.compile(self._body, dynamic=False, mode=compile_mode)
        else:
            self._body_fn = self._body
        self.precision = ("fp32" + (" packed" if packed else "")
                          + (" compiled" if compile_body else ""))
        self._copies_captured = copies_in_graph

    def _make_runner(self, b: int) -> Callable[[], None]:
        inp, out = self._dev_in[b], self._dev_out[b]
        host_in, host_out = self._host_in[b], self._host_out[b]
        copies = self._copies_captured

        def body() -> None:
            if copies:
                inp.copy_(host_in, non_blocking=True)
            self._body_fn(inp, out)
            if copies:
                host_out.copy_(out, non_blocking=True)

        if not self.capture:
            if self._compiled:
                body()  # compile now, on the scratch slot, not inside a real step
            return body
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up (allocator, lazy init, compile) on the scratch slot
                body()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()
        self._graphs = getattr(self, "_graphs", {})
        self._graphs[b] = graph  # keep it alive
        return graph.replay


BACKEND = CudaGraphBackend
