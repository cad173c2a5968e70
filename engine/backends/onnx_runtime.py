"""ONNX Runtime backend: the step exported to ONNX (see :mod:`engine.export`), run by ORT.

State stays on the host in one ``(max_streams, C, pad)`` float32 array per layer; a step feeds
the listed rows (a plain slice for one stream, a gather otherwise) and writes the new rows back.
Needs ``onnx`` and ``onnxruntime`` (``pip install pfes[onnx]``).
"""

from __future__ import annotations

import numpy as np

from engine.backends.base import Backend
from engine.export import onnx_step_bytes, state_shapes
from engine.model import PfesNet
from pfes.errors import DependencyError, InputError

__all__ = ["OnnxRuntimeBackend", "BACKEND"]


def _import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise DependencyError(
            "the onnxruntime backend needs onnxruntime: pip install pfes[onnx]"
        ) from e
    return onnxruntime


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, net: PfesNet, max_streams: int, device: str = "cpu",
                 threads: int = 1):
        super().__init__(net, max_streams, device)
        ort = _import_ort()
        if device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise DependencyError(
                    "onnxruntime has no CUDA provider here: pip install onnxruntime-gpu"
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            raise InputError(f"the onnxruntime backend cannot run on {device!r}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # one thread: lowest latency for small batches
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_step_bytes(net), opts, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.states = [np.zeros((self.max_streams, c, p), np.float32) for c, p in state_shapes(net)]

    def reset(self, slots: np.ndarray) -> None:
        for st in self.states:
            st[np.asarray(slots, dtype=np.int64)] = 0.0

    def step(self, slots, x, valid):
        slots = np.asarray(slots, dtype=np.int64)
        if len(slots) == 1:
            s = int(slots[0])
            feeds = [st[s : s + 1] for st in self.states]
        else:
            feeds = [st[slots] for st in self.states]
        ins = [np.ascontiguousarray(x, np.float32), np.asarray(valid, bool), *feeds]
        outs = self.session.run(None, dict(zip(self.input_names, ins, strict=True)))
        if len(slots) == 1:
            for st, new in zip(self.states, outs[2:], strict=True):
                st[s : s + 1] = new
        else:
            for st, new in zip(self.states, outs[2:], strict=True):
                st[slots] = new
        return outs[0], outs[1]


BACKEND = OnnxRuntimeBackend
