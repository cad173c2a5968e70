"""Checkpoints: weights plus JSON metadata, loaded without unpickling arbitrary objects.

A checkpoint is a ``torch.save`` file holding a dict of plain types only::

    {"format": "pfes.checkpoint/1", "config": {...ModelConfig...},
     "state_dict": {name: Tensor}, "meta_json": "<JSON text>"}

``meta`` (a JSON object) records what the rest of the system needs to use the weights:
``feature_spec`` (the feature vector the model was trained on), ``detector`` (the peak
detector's operating point), ``training`` (supervision, epochs chosen, losses) and
``provenance`` (data seed, git revision, date). Loading uses ``torch.load(weights_only=True)``,
so a malicious file cannot run code; every failure becomes :class:`pfes.errors.ModelError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.model import ModelConfig, PfesNet
from pfes.errors import ModelError

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_MODEL_PATH",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_model_path",
]

CHECKPOINT_FORMAT = "pfes.checkpoint/1"
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "weights" / "default.pt"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network (in eval mode) and its metadata."""

    net: PfesNet
    meta: dict
    path: Path

    @property
    def config(self) -> ModelConfig:
        return self.net.cfg


def save_checkpoint(path: str | os.PathLike, net: PfesNet, meta: dict) -> Path:
    """Write ``net`` and ``meta`` (JSON-serialisable) atomically to ``path``."""
    path = Path(path)
    if net.input_scaling_active:
        raise ModelError("the network still has a training-time input scaling; "
                         "call fold_input_scaling() before saving")
    try:
        meta_json = json.dumps(meta, sort_keys=True)
    except TypeError as e:
        raise ModelError(f"checkpoint metadata is not JSON-serialisable: {e}") from e
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": net.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "meta_json": meta_json,
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        raise ModelError(f"cannot write checkpoint {path}: {e}") from e
    return path


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """``None`` means the bundled default model."""
    p = DEFAULT_MODEL_PATH if path is None else Path(path)
    if not p.is_file():
        if path is None:
            raise ModelError(
                f"the bundled default model is missing ({p}); rebuild it with "
                "scripts/train_default_model.sh"
            )
        raise ModelError(f"model file not found: {p}")
    return p


def load_checkpoint(path: str | os.PathLike | None = None, map_location: str = "cpu") -> Checkpoint:
    """Load a checkpoint (``None``: the bundled default). Raises ModelError on any problem."""
    p = resolve_model_path(path)
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        raise ModelError(f"{p}: not a readable pfes checkpoint ({type(e).__name__})") from e
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        fmt = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ModelError(f"{p}: unsupported checkpoint format {fmt!r}, want {CHECKPOINT_FORMAT!r}")
    try:
        cfg = ModelConfig.from_dict(dict(payload["config"]))
        meta = json.loads(payload["meta_json"])
        net = PfesNet(cfg)
        net.load_state_dict(payload["state_dict"], strict=True)
    except ModelError:
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"{p}: incompatible checkpoint ({type(e).__name__}: {first})") from e
    net.eval()
    return Checkpoint(net=net, meta=meta, path=p)
