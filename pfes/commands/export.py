"""``pfes export``: write the streaming step as a deployable artifact with its metadata.

    pfes export --format onnx|exported-program|tensorrt [--model PATH] [--out PATH]

The artifact is the one-frame step with explicit state (see :mod:`engine.export`); the model
config and the checkpoint's metadata (feature spec, detector operating point, ...) travel with
it. Default output: the model's name with ``.onnx``, ``.pt2`` or ``.ep``. After writing, the
artifact is loaded back and checked against the PyTorch step (skipped for tensorrt with
``--no-verify``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from engine.checkpoint import load_checkpoint
from engine.export import FORMATS, export_step, load_exported
from pfes.errors import ModelError

__all__ = ["HELP", "add_arguments", "main", "verify_export"]

HELP = "export the streaming step to ONNX, a torch ExportedProgram or TensorRT"
SUFFIX = {"onnx": ".onnx", "exported-program": ".pt2", "tensorrt": ".ep"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", required=True, choices=FORMATS, help="artifact format")
    p.add_argument("--model", help="checkpoint to export (default: the bundled model)")
    p.add_argument("--out", help="output file (default: next to the model, by format)")
    p.add_argument("--max-batch", type=int, default=1024,
                   help="tensorrt: largest batch the engine accepts (default: %(default)s)")
    p.add_argument("--cache-dir", help="tensorrt: engine cache directory")
    p.add_argument("--no-verify", action="store_true", help="skip the load-back check")


def verify_export(net, path: Path, fmt: str, steps: int = 20, batch: int = 3) -> float:
    """Max abs difference between the artifact and ``net.step`` over random steps."""
    ex = load_exported(path, fmt)
    rng = np.random.default_rng(0)
    st, ref = ex.init_state(batch), net.init_state(batch)
    worst = 0.0
    for _ in range(steps):
        x = rng.normal(size=(batch, net.cfg.in_features)).astype(np.float32)
        v = rng.random(batch) > 0.1
        inten, apex, st = ex.step(x, v, st)
        with torch.no_grad():
            out, ref = net.step(torch.from_numpy(x), torch.from_numpy(v), ref)
        worst = max(worst, float(np.abs(inten - out.intensity.numpy()).max()),
                    float(np.abs(apex - out.apex.numpy()).max()))
    return worst


def main(args: argparse.Namespace) -> int:
    ck = load_checkpoint(args.model)
    out = Path(args.out) if args.out else ck.path.with_suffix(SUFFIX[args.format])
    path = export_step(ck.net, out, args.format, ck.meta, max_batch=args.max_batch,
                       cache_dir=args.cache_dir)
    line = f"wrote {path} ({args.format}, {path.stat().st_size / 1024:.0f} KiB)"
    if not args.no_verify:
        diff = verify_export(ck.net, path, args.format)
        tol = 1e-2 if args.format == "tensorrt" else 1e-5
        if diff > tol:
            raise ModelError(f"{path}: exported outputs differ from the model by {diff:.2e}")
        line += f"; load-back check: max abs difference {diff:.1e}"
    print(line)
    return 0
