"""Deployable artifacts of the streaming step: ONNX, a torch ExportedProgram, TensorRT.

What is exported is the *step*, not the offline forward: one frame for a batch of streams,
with the per-layer state passed in and returned, so a deployment runs the same causal,
constant-cost update as :class:`engine.runtime.StreamEngine`::

    (x (B, F) float32, valid (B,) bool, state_0 (B, C, p_0), ..., state_{L-1})
        -> (intensity (B,), apex (B, 2), new_state_0, ..., new_state_{L-1})

The batch dimension is dynamic. Layers without history (kernel size 1) have no state input.
Metadata (``format`` = ``pfes.step/1``, the model config, the checkpoint's meta such as the
feature spec and detector operating point, the state shapes) travels inside the artifact: ONNX
``metadata_props`` key ``pfes``; the ExportedProgram's extra file ``pfes.json``; for TensorRT a
side file ``<artifact>.json``. :func:`load_exported` reads any of them back into an object with
``init_state(batch)`` and ``step(x, valid, state)``, numpy in and out.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from engine.model import PfesNet
from pfes.errors import DependencyError, InputError, ModelError

__all__ = [
    "STEP_FORMAT",
    "FORMATS",
    "StepModule",
    "ExportedStep",
    "step_metadata",
    "onnx_step_bytes",
    "export_step",
    "load_exported",
]

STEP_FORMAT = "pfes.step/1"
FORMATS = ("onnx", "exported-program", "tensorrt")
OPSET = 17


class StepModule(nn.Module):
    """``PfesNet.step`` with flat tensor arguments, for exporters. State tensors only for
    layers that have history (``(k-1) * d > 0``)."""

    def __init__(self, net: PfesNet):
        super().__init__()
        self.net = net
        self.has_state = [blk.pad > 0 for blk in net.layers]

    def forward(self, x: Tensor, valid: Tensor, *state: Tensor):
        it = iter(state)
        full = [
            next(it) if has else x.new_zeros(x.shape[0], self.net.cfg.channels, 0)
            for has in self.has_state
        ]
        out, new = self.net.step(x, valid, full)
        kept = [s for s, has in zip(new, self.has_state, strict=True) if has]
        return (out.intensity, out.apex, *kept)


def state_shapes(net: PfesNet) -> list[list[int]]:
    """(C, pad) of every exported state tensor, in argument order."""
    return [[net.cfg.channels, blk.pad] for blk in net.layers if blk.pad > 0]


def step_metadata(net: PfesNet, meta: dict | None = None) -> dict:
    return {
        "format": STEP_FORMAT,
        "config": net.cfg.to_dict(),
        "state_shapes": state_shapes(net),
        "meta": meta or {},
    }


def _example(net: PfesNet, batch: int = 2, device="cpu"):
    f = net.cfg.in_features
    x = torch.zeros(batch, f, device=device)
    v = torch.ones(batch, dtype=torch.bool, device=device)
    st = [torch.zeros(batch, c, p, device=device) for c, p in state_shapes(net)]
    return (x, v, *st)


def _names(net: PfesNet) -> tuple[list[str], list[str]]:
    n = len(state_shapes(net))
    ins = ["x", "valid"] + [f"state_{i}" for i in range(n)]
    outs = ["intensity", "apex"] + [f"new_state_{i}" for i in range(n)]
    return ins, outs


def onnx_step_bytes(net: PfesNet, meta: dict | None = None) -> bytes:
    """The step as an ONNX model (opset 17, dynamic batch), metadata under key ``pfes``."""
    try:
        import onnx
    except ImportError as e:
        raise DependencyError("ONNX export needs onnx: pip install pfes[onnx]") from e
    net = copy.deepcopy(net).cpu().eval()
    ins, outs = _names(net)
    axes = {name: {0: "batch"} for name in ins + outs}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            StepModule(net), _example(net), buf,  # type: ignore[arg-type]  # file-like is accepted
            dynamo=False, input_names=ins,
            output_names=outs, dynamic_axes=axes, opset_version=OPSET,
        )
    model = onnx.load_from_string(buf.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = "pfes", json.dumps(step_metadata(net, meta), sort_keys=True)
    return model.SerializeToString()


def _exported_program(net: PfesNet, device="cpu"):
    batch = torch.export.Dim("batch", min=1, max=65536)
    n = len(state_shapes(net))
    shapes = ({0: batch}, {0: batch}, tuple({0: batch} for _ in range(n)))  # *state is one tuple
    with torch.no_grad():
        return torch.export.export(
            StepModule(net).eval(), _example(net, device=device), dynamic_shapes=shapes
        )


def export_step(net: PfesNet, out: str | Path, fmt: str, meta: dict | None = None,
                *, max_batch: int = 1024, cache_dir: str | None = None) -> Path:
    """Write the step of ``net`` as ``fmt`` (one of :data:`FORMATS`) to ``out``."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write {out}: {e}") from e
    net = net.eval()
    if fmt == "onnx":
        out.write_bytes(onnx_step_bytes(net, meta))
    elif fmt == "exported-program":
        ep = _exported_program(copy.deepcopy(net).cpu())
        extra = {"pfes.json": json.dumps(step_metadata(net, meta), sort_keys=True)}
        torch.export.save(ep, str(out), extra_files=extra)
    elif fmt == "tensorrt":
        from engine.backends.tensorrt import compile_step, import_trt

        trt = import_trt()
        module, inputs = compile_step(net, max_batch=max_batch, cache_dir=cache_dir)
        trt.save(module, str(out), output_format="exported_program", arg_inputs=inputs)
        Path(str(out) + ".json").write_text(json.dumps(step_metadata(net, meta), sort_keys=True))
    else:
        raise InputError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    return out


class ExportedStep:
    """An exported step loaded back. ``step(x, valid, state)`` -> (intensity, apex, state)."""

    def __init__(self, info: dict, run, path: Path):
        if info.get("format") != STEP_FORMAT:
            raise ModelError(f"{path}: not a pfes step artifact (format {info.get('format')!r})")
        self.info = info
        self.meta = info.get("meta", {})
        self.lookahead_frames = int(info["config"].get("lookahead_frames", 0))
        self.in_features = int(info["config"]["in_features"])
        self.path = path
        self._run = run

    def init_state(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, c, p), np.float32) for c, p in self.info["state_shapes"]]

    def step(self, x: np.ndarray, valid: np.ndarray, state: list[np.ndarray]):
        x = np.ascontiguousarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise InputError(f"x must be (B, {self.in_features}), got {x.shape}")
        outs = self._run(x, np.asarray(valid, bool), state)
        return outs[0], outs[1], list(outs[2:])


def _load_onnx(path: Path) -> ExportedStep:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise DependencyError("loading ONNX needs onnxruntime: pip install pfes[onnx]") from e
    try:
        model = onnx.load(str(path))
        info = json.loads({p.key: p.value for p in model.metadata_props}["pfes"])
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"{path}: not a readable pfes ONNX step ({type(e).__name__})") from e
    names = [i.name for i in sess.get_inputs()]

    def run(x, valid, state):
        return sess.run(None, dict(zip(names, [x, valid, *state], strict=True)))

    return ExportedStep(info, run, path)


def _load_program(path: Path, trt: bool) -> ExportedStep:
    try:
        if trt:
            from engine.backends.tensorrt import import_trt

            module = import_trt().load(str(path)).module()
            info = json.loads(Path(str(path) + ".json").read_text())
            device = "cuda"
        else:
            extra = {"pfes.json": ""}
            module = torch.export.load(str(path), extra_files=extra).module()
            info = json.loads(extra["pfes.json"])
            device = "cpu"
    except (DependencyError, ModelError):
        raise
    except Exception as e:
        raise ModelError(f"{path}: not a readable pfes step program ({type(e).__name__})") from e

    def run(x, valid, state):
        args = [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (x, valid, *state)]
        with torch.no_grad():
            outs = module(*args)
        return [o.float().cpu().numpy() for o in outs]

    return ExportedStep(info, run, path)


def load_exported(path: str | Path, fmt: str | None = None) -> ExportedStep:
    """Load an artifact written by :func:`export_step`; ``fmt`` guessed from the suffix."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"exported model not found: {path}")
    if fmt is None:
        fmt = {".onnx": "onnx", ".pt2": "exported-program", ".ep": "tensorrt"}.get(path.suffix)
        if fmt is None:
            raise InputError(f"cannot tell the format of {path}: give fmt (one of {FORMATS})")
    if fmt == "onnx":
        return _load_onnx(path)
    if fmt in ("exported-program", "tensorrt"):
        return _load_program(path, trt=fmt == "tensorrt")
    raise InputError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
