"""The streaming step rewritten for few GPU kernels: one packed state tensor, past taps first.

:meth:`engine.model.PfesNet.step` is written for clarity: per layer it gathers the layer's
state, concatenates, slices, runs an einsum and scatters the state back, about 90 small
kernels per step. On a GPU a step of a small model is a chain of tiny kernels, so its time
is roughly the number of kernels times a few microseconds. :class:`PackedStep` computes the
same function (to float rounding) with about half as many:

* the state of every layer lives in one ``(slots, C, R)`` tensor, ``R = sum of (k-1)*d``,
  oldest first within each layer: one gather and one scatter per step for all layers;
* a causal convolution's taps are the layer's past inputs (already in the state) plus the
  current one. The past taps of *all* layers are known before the step starts, so their
  contribution (and the conv bias) is one matrix product against a block-structured weight;
  each layer then adds only ``z_t @ W_now``;
* the state shift (drop the oldest input, append the newest) is one copy for all layers plus
  one column write per layer.

Pure torch (no custom kernels); captured in a CUDA graph by
:class:`engine.backends.cuda_graph.CudaGraphBackend` with ``packed=True``. Parity with
``PfesNet.step`` is tested on the CPU.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.model import PfesNet

__all__ = ["PackedStep"]


class PackedStep:
    """Weights rearranged for the packed step; :meth:`__call__` does one step in place."""

    def __init__(self, net: PfesNet):
        cfg = net.cfg
        p = next(net.parameters())
        self.in_features = cfg.in_features
        c, k = cfg.channels, cfg.kernel_size
        layers = net.layers
        pads = [blk.pad for blk in layers]
        self.width = sum(pads)
        offs = [sum(pads[:i]) for i in range(len(pads))]
        # the column of each layer's newest input after the shift (its last state column)
        self.ends = [o + q - 1 for o, q in zip(offs, pads, strict=True) if q > 0]
        self.has_state = [q > 0 for q in pads]
        past = []  # state columns that are past taps, ordered (layer, tap)
        for o, blk in zip(offs, layers, strict=True):
            past += [o + j * blk.dilation for j in range(k - 1)]
        self.past_idx = torch.tensor(past, dtype=torch.long, device=p.device)
        n_past = len(past)
        # gathered past taps are laid out (C_in, layer, tap): build the matching weight
        big = torch.zeros(c, len(layers), k - 1, len(layers), c, device=p.device, dtype=p.dtype)
        for li, blk in enumerate(layers):
            w = blk.conv.weight.detach()  # (C_out, C_in, k)
            for j in range(k - 1):
                big[:, li, j, li, :] = w[:, :, j].T  # (C_in, C_out)
        self.w_past = big.reshape(c * n_past, len(layers) * c) if n_past else None
        self.b_conv = torch.cat([cast(Tensor, blk.conv.bias).detach() for blk in layers])
        self.w_now = [blk.conv.weight.detach()[:, :, k - 1].T.contiguous() for blk in layers]
        self.norms = [(blk.norm.weight.detach(), blk.norm.bias.detach(), blk.norm.eps)
                      for blk in layers]
        self.w_out = [blk.out.weight.detach().T.contiguous() for blk in layers]
        self.b_out = [blk.out.bias.detach() for blk in layers]
        self.w_in = net.inp.weight.detach().T.contiguous()  # (F + 1, C)
        self.b_in = net.inp.bias.detach()
        self.head_norm = (net.norm.weight.detach(), net.norm.bias.detach(), net.norm.eps)
        self.w_proj, self.b_proj = net.proj.weight.detach().T.contiguous(), net.proj.bias.detach()
        self.w_int = net.intensity_head.weight.detach().T.contiguous()
        self.b_int = net.intensity_head.bias.detach()
        self.w_apex = net.apex_head.weight.detach().T.contiguous()
        self.b_apex = net.apex_head.bias.detach()
        self.channels = c

    def init_state(self, slots: int, device: str | torch.device) -> Tensor:
        return torch.zeros(slots, self.channels, self.width, device=device,
                           dtype=self.w_in.dtype)

    def __call__(self, state: Tensor, inp: Tensor, out: Tensor) -> None:
        """state: (slots, C, R), updated in place; inp: (b, F + 2) ``[x, valid, slot]``;
        out: (b, 3) ``[intensity, apex_macro, apex_micro]``."""
        f = self.in_features
        c = self.channels
        idx = inp[:, f + 1].long()
        v = inp[:, f:f + 1]
        # [x * valid, valid] through the input layer (NaN in invalid frames ignored)
        h = torch.addmm(self.b_in, torch.nan_to_num(inp[:, :f + 1]) * v, self.w_in)
        if self.width:
            sb = state.index_select(0, idx)  # (b, C, R)
            new = torch.empty_like(sb)
            new[:, :, :-1] = sb[:, :, 1:]  # every layer's window moves one frame
        if self.w_past is not None:
            taps = sb.index_select(2, self.past_idx).reshape(sb.shape[0], -1)
            pre = torch.addmm(self.b_conv, taps, self.w_past)  # (b, L * C)
        else:
            pre = self.b_conv.expand(h.shape[0], -1)
        end = 0
        for li, (w_now, (nw, nb, eps), w_out, b_out) in enumerate(
                zip(self.w_now, self.norms, self.w_out, self.b_out, strict=True)):
            z = F.layer_norm(h, (c,), nw, nb, eps)
            if self.has_state[li]:
                new[:, :, self.ends[end]] = z
                end += 1
            y = torch.relu(torch.addmm(pre[:, li * c:(li + 1) * c], z, w_now))
            h = torch.addmm(h, y, w_out).add_(b_out)
        if self.width:
            state.index_copy_(0, idx, new)
        nw, nb, eps = self.head_norm
        feat = F.layer_norm(h, (c,), nw, nb, eps)
        g = torch.relu(torch.addmm(self.b_proj, feat, self.w_proj))
        logits = torch.cat([torch.addmm(self.b_int, g, self.w_int),
                            torch.addmm(self.b_apex, feat, self.w_apex)], dim=1)
        torch.sigmoid(logits, out=out)
