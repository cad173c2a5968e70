"""PyTorch eager backend: :meth:`PfesNet.step` on gathered per-slot state (CPU or CUDA).

State lives in one ``(max_streams, C, pad)`` tensor per layer on the backend's device; a step
gathers the listed rows, runs the reference step, and writes the new rows back. This is the
reference every other backend is compared with.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from engine.backends.base import Backend, require_cuda
from engine.model import PfesNet

__all__ = ["TorchBackend", "BACKEND"]


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cpu"):
        if str(device).startswith("cuda"):
            require_cuda(self.name, device)
        super().__init__(net, max_streams, device)
        self.net = copy.deepcopy(net).to(device).eval()
        self.states = self.net.init_state(self.max_streams)
        self._single = [torch.zeros(1, dtype=torch.long, device=device)]

    def reset(self, slots: np.ndarray) -> None:
        idx = torch.as_tensor(np.asarray(slots, dtype=np.int64), device=self.device)
        for buf in self.states:
            buf.index_fill_(0, idx, 0.0)

    @torch.inference_mode()
    def step(self, slots, x, valid):
        slots = np.asarray(slots, dtype=np.int64)
        xt = torch.as_tensor(x, dtype=torch.float32).to(self.device, non_blocking=True)
        vt = torch.as_tensor(valid, dtype=torch.bool).to(self.device, non_blocking=True)
        if len(slots) == 1:  # views, no index kernels: the common single-stream case
            s = int(slots[0])
            state = [buf[s : s + 1] for buf in self.states]
            out, new = self.net.step(xt, vt, state)
            for buf, nb in zip(self.states, new, strict=True):
                buf[s : s + 1].copy_(nb)
        else:
            idx = torch.as_tensor(slots, device=self.device)
            state = [buf.index_select(0, idx) for buf in self.states]
            out, new = self.net.step(xt, vt, state)
            for buf, nb in zip(self.states, new, strict=True):
                buf.index_copy_(0, idx, nb)
        return (
            out.intensity.float().cpu().numpy(),
            out.apex.float().cpu().numpy(),
        )


BACKEND = TorchBackend
