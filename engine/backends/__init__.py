"""Inference backends, chosen by name from one small registry.

Each backend is one module exposing ``BACKEND`` (a :class:`engine.backends.base.Backend`
subclass). Modules are imported on demand, so an optional dependency (onnxruntime,
torch_tensorrt) is only needed by the backend that uses it.

=============  ==========================================  =========================
name           what                                        devices
=============  ==========================================  =========================
torch          PyTorch eager ``PfesNet.step``              cpu, cuda
numpy          the step re-implemented in numpy float32    cpu
onnxruntime    the step exported to ONNX, run by ORT       cpu (cuda with ORT-GPU)
cuda-graph     packed step + copies captured per bucket    cuda
compile        ``torch.compile`` of the batched step       cpu, cuda (+ CUDA graphs)
tensorrt       torch-tensorrt (dynamo, fp16, disk cache)   cuda
=============  ==========================================  =========================
"""

from __future__ import annotations

import importlib

from engine.backends.base import Backend
from engine.model import PfesNet
from pfes.errors import InputError

__all__ = ["BACKENDS", "Backend", "get_backend", "create_backend"]

BACKENDS: dict[str, str] = {
    "torch": "engine.backends.torch_eager",
    "numpy": "engine.backends.numpy_step",
    "onnxruntime": "engine.backends.onnx_runtime",
    "cuda-graph": "engine.backends.cuda_graph",
    "compile": "engine.backends.compiled",
    "tensorrt": "engine.backends.tensorrt",
}


def get_backend(name: str) -> type[Backend]:
    """The backend class registered under ``name``; InputError for an unknown name."""
    try:
        modname = BACKENDS[name]
    except KeyError:
        raise InputError(
            f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}"
        ) from None
    return importlib.import_module(modname).BACKEND


def create_backend(name: str, net: PfesNet, max_streams: int, device: str = "cpu") -> Backend:
    """Build backend ``name`` for ``net`` with state for ``max_streams`` slots on ``device``."""
    return get_backend(name)(net, max_streams, device)
