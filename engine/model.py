"""The P-FES two-branch network on a causal dilated temporal convolution backbone.

One set of weights, two ways to run it:

* ``PfesNet.forward(x, valid)``: offline, a whole sequence at once.
  ``x: (B, T, F) float32`` per-frame features, ``valid: (B, T) bool`` (False where no face).
  Returns :class:`NetOutput` with ``intensity (B, T)``, ``apex (B, T, 2)`` (macro, micro
  sigmoids), ``feat (B, T, C)`` (backbone feature f_t, used by the contrastive loss) and
  ``proj (B, T, P)`` (projected feature g_t, used by GIM's feature-space Gaussian).
* ``PfesNet.step(x_t, valid_t, state)``: streaming, one frame for each of B streams.
  ``x_t: (B, F)``, ``valid_t: (B,)``; returns the outputs for frame ``t - D`` (D =
  ``lookahead_frames``) and the new state. Each step costs O(layers): every layer keeps the
  last ``(k - 1) * dilation`` inputs of its convolution, nothing else.

Causality: the output for frame t depends on frames <= t + D only. Offline, D zero frames
(marked invalid) are appended and the first D outputs are dropped; streaming, the first D
steps return outputs that belong to no frame (the caller discards them, see
``engine.runtime``) and ``D`` padding steps at the end of a stream flush the last frames.
A test proves that both paths agree to 1e-5.

Architecture (per frame, C channels):
    h = Linear(F + 1 -> C)([x * valid, valid])
    for each dilation d:  h = h + Linear(C -> C)(relu(CausalConv_k,d(LayerNorm(h))))
    f = LayerNorm(h)                                   # backbone feature f_t
    g = relu(Linear(C -> P)(f))                        # projected feature g_t
    intensity = sigmoid(Linear(P -> 1)(g))             # class-agnostic branch
    apex = sigmoid(Linear(C -> 2)(f))                  # class-aware apex branch
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pfes.errors import ModelError

__all__ = ["ModelConfig", "NetOutput", "PfesNet", "receptive_field"]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network. ``in_features`` excludes the validity channel (added inside)."""

    in_features: int
    channels: int = 64
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    proj_dim: int = 64
    lookahead_frames: int = 0
    dropout: float = 0.1
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        checks = [
            (self.in_features >= 1, "in_features must be >= 1"),
            (self.channels >= 1, "channels must be >= 1"),
            (self.kernel_size >= 1, "kernel_size must be >= 1"),
            (len(self.dilations) >= 1 and min(self.dilations) >= 1, "dilations must be >= 1"),
            (self.proj_dim >= 1, "proj_dim must be >= 1"),
            (self.lookahead_frames >= 0, "lookahead_frames must be >= 0"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ModelError(f"bad model config: {msg}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("extra")
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = set(d) - known
        if unknown:
            raise ModelError(f"unknown model config keys: {sorted(unknown)}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ModelError(f"bad model config: {e}") from e


def receptive_field(cfg: ModelConfig) -> int:
    """Frames of history one output sees (including the current frame)."""
    return 1 + sum((cfg.kernel_size - 1) * d for d in cfg.dilations)


class NetOutput(NamedTuple):
    intensity: Tensor  # (B, T) or (B,) in [0, 1]
    apex: Tensor  # (B, T, 2) or (B, 2): macro, micro sigmoids
    feat: Tensor  # (B, T, C) or (B, C): backbone feature f_t
    proj: Tensor  # (B, T, P) or (B, P): projected feature g_t


class _Block(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.out = nn.Linear(channels, channels)
        self.drop = nn.Dropout(dropout)
        self.pad = (kernel_size - 1) * dilation
        self.dilation = dilation

    def forward(self, h: Tensor) -> Tensor:  # h: (B, T, C)
        z = self.norm(h).transpose(1, 2)  # (B, C, T)
        z = F.conv1d(F.pad(z, (self.pad, 0)), self.conv.weight, self.conv.bias, dilation=self.dilation)
        z = torch.relu(z.transpose(1, 2))
        return h + self.drop(self.out(z))

    def step(self, h: Tensor, buf: Tensor) -> tuple[Tensor, Tensor]:
        """h: (B, C); buf: (B, C, pad) the last ``pad`` normalised inputs. Returns (h', buf')."""
        z = self.norm(h)  # (B, C)
        k = self.conv.kernel_size[0]
        if self.pad:
            window = torch.cat([buf, z.unsqueeze(2)], dim=2)  # (B, C, pad + 1)
            taps = window[:, :, :: self.dilation]  # (B, C, k), oldest first
            new_buf = window[:, :, 1:]
        else:
            taps = z.unsqueeze(2)
            new_buf = buf
        w = self.conv.weight  # (C_out, C_in, k)
        y = torch.einsum("bik,oik->bo", taps, w) if k > 1 else taps[:, :, 0] @ w[:, :, 0].T
        y = torch.relu(y + cast(Tensor, self.conv.bias))
        return h + self.out(y), new_buf


class PfesNet(nn.Module):
    """Two-branch causal network; see the module docstring for shapes."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.inp = nn.Linear(cfg.in_features + 1, c)
        self.blocks = nn.ModuleList(
            _Block(c, cfg.kernel_size, d, cfg.dropout) for d in cfg.dilations
        )
        self.norm = nn.LayerNorm(c)
        self.proj = nn.Linear(c, cfg.proj_dim)
        self.intensity_head = nn.Linear(cfg.proj_dim, 1)
        self.apex_head = nn.Linear(c, 2)
        self._in_scaling: tuple[Tensor, Tensor] | None = None  # see set_input_scaling
        # Start with low intensity and low apex scores: most frames are neutral.
        nn.init.constant_(self.intensity_head.bias, -2.0)
        nn.init.constant_(self.apex_head.bias, -3.0)

    @property
    def layers(self) -> list[_Block]:
        """The residual blocks, typed (``self.blocks`` is an ``nn.ModuleList``)."""
        return [cast(_Block, b) for b in self.blocks]

    # -- input scaling (training only) -----------------------------------------------------
    @property
    def input_scaling_active(self) -> bool:
        """True between :meth:`set_input_scaling` and :meth:`fold_input_scaling`."""
        return self._in_scaling is not None

    def set_input_scaling(self, shift: Tensor, scale: Tensor) -> None:
        """Feed the network ``(x - shift) * scale`` instead of x (both ``(F,)``), for training;
        a matrix ``scale`` (``(F, F)``) feeds ``scale @ (x - shift)`` (a linear input whitening).

        The features are small lengths (about 0.005 IOD of spread), so without this the input
        layer must grow large weights to see a weak movement. Not saved: call
        :meth:`fold_input_scaling` before saving, which moves it into the input layer, so the
        saved network takes raw features and every backend runs it unchanged.
        """
        f = self.cfg.in_features
        shift = torch.as_tensor(shift, dtype=torch.float32).reshape(-1)
        scale = torch.as_tensor(scale, dtype=torch.float32)
        if scale.ndim != 2:
            scale = scale.reshape(-1)
        if shift.numel() != f or scale.shape not in ((f,), (f, f)):
            raise ModelError(f"input scaling needs {f} shifts and {f} scales or an {f} x {f} "
                             f"matrix, got {shift.numel()} and {tuple(scale.shape)}")
        if not (torch.isfinite(shift).all() and torch.isfinite(scale).all()):
            raise ModelError("input scaling must be finite")
        if scale.ndim == 1 and not (scale > 0).all():
            raise ModelError("input scaling must have positive scales")
        p = self.inp.weight
        self._in_scaling = (shift.to(p.device, p.dtype), scale.to(p.device, p.dtype))

    @torch.no_grad()
    def fold_input_scaling(self) -> None:
        """Move the active input scaling into the input layer (exact up to rounding).

        inp([(x - m) * s * v, v]) = W_x diag(s) (x v) + (W_v - W_x (m * s)) v + b: the scale goes
        into the feature columns, the shift into the validity column, so invalid frames
        (x v = 0, v = 0) still see the bias alone. A matrix S the same way: W_x S and
        W_v - W_x S m.
        """
        if self._in_scaling is None:
            return
        shift, scale = self._in_scaling
        f = self.cfg.in_features
        w = self.inp.weight  # (C, F + 1): features, then validity
        w_x = w[:, :f].clone()
        if scale.ndim == 2:
            w[:, f] -= w_x @ (scale @ shift)
            w[:, :f] = w_x @ scale
        else:
            w[:, f] -= w_x @ (shift * scale)
            w[:, :f] = w_x * scale
        self._in_scaling = None

    # -- shared pieces -------------------------------------------------------------------
    def _embed(self, x: Tensor, valid: Tensor) -> Tensor:
        v = valid.to(x.dtype).unsqueeze(-1)
        x = torch.nan_to_num(x)
        if self._in_scaling is not None:
            shift, scale = self._in_scaling
            x = (x - shift) @ scale.T if scale.ndim == 2 else (x - shift) * scale
        x = x * v
        return self.inp(torch.cat([x, v], dim=-1))

    def _heads(self, h: Tensor) -> NetOutput:
        f = self.norm(h)
        g = torch.relu(self.proj(f))
        inten = torch.sigmoid(self.intensity_head(g)).squeeze(-1)
        apex = torch.sigmoid(self.apex_head(f))
        return NetOutput(inten, apex, f, g)

    def _check_x(self, x: Tensor, ndim: int) -> None:
        if x.ndim != ndim or x.shape[-1] != self.cfg.in_features:
            want = "(B, T, F)" if ndim == 3 else "(B, F)"
            raise ModelError(
                f"features of shape {tuple(x.shape)} do not fit the model: expected {want} "
                f"with F = {self.cfg.in_features}"
            )

    # -- offline ---------------------------------------------------------------------------
    def forward(self, x: Tensor, valid: Tensor | None = None) -> NetOutput:
        """x: (B, T, F); valid: (B, T) bool or None (all valid). Outputs for every frame."""
        self._check_x(x, 3)
        if valid is None:
            valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        d = self.cfg.lookahead_frames
        if d:
            x = F.pad(x, (0, 0, 0, d))
            valid = F.pad(valid, (0, d), value=False)
        h = self._embed(x, valid)
        for blk in self.layers:
            h = blk(h)
        out = self._heads(h)
        if d:
            out = NetOutput(*(t[:, d:] for t in out))
        return out

    # -- streaming -------------------------------------------------------------------------
    def init_state(self, batch: int, device=None, dtype=None) -> list[Tensor]:
        """Zero state for ``batch`` new streams: one (B, C, (k-1)*d) tensor per layer."""
        p = next(self.parameters())
        device = device or p.device
        dtype = dtype or p.dtype
        return [
            torch.zeros((batch, self.cfg.channels, blk.pad), device=device, dtype=dtype)
            for blk in self.layers
        ]

    def step(self, x: Tensor, valid: Tensor, state: list[Tensor]) -> tuple[NetOutput, list[Tensor]]:
        """One frame for each of B streams. x: (B, F), valid: (B,) bool.

        Returns the outputs for frame ``t - lookahead_frames`` of each stream and the new state.
        Inference only: dropout is not applied here, so compare with ``forward`` in ``eval()``.
        """
        self._check_x(x, 2)
        if len(state) != len(self.blocks):
            raise ModelError(f"state has {len(state)} layers, the model {len(self.blocks)}")
        h = self._embed(x, valid)
        new_state = []
        for blk, buf in zip(self.layers, state, strict=True):
            h, buf = blk.step(h, buf)
            new_state.append(buf)
        return self._heads(h), new_state
