"""``pfes bench``: engine step latency on this machine, per backend and batch size.

Each cell opens ``batch`` slots in a :class:`engine.runtime.StreamEngine`, warms up, then
times ``steps`` calls of ``StreamEngine.step`` (numpy in, numpy out, everything included:
gather, network, scatter, host copies) with ``time.perf_counter``, and reports p50 and p99 in
microseconds. The model is ``--model``, else the bundled default if present, else a random
network of the default size with 48 input features. The timing helpers here are shared by
``benchmarks/bench_engine.py`` and ``benchmarks/gpu_bench.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from engine.backends import BACKENDS, Backend
from engine.checkpoint import DEFAULT_MODEL_PATH, load_checkpoint
from engine.model import ModelConfig, PfesNet
from engine.runtime import StreamEngine
from pfes.errors import InputError, PfesError

__all__ = ["HELP", "add_arguments", "main", "Cell", "bench_model", "time_engine",
           "run_grid", "format_table", "environment"]

HELP = "measure engine step latency (p50 / p99) per backend and batch size"
log = logging.getLogger(__name__)
CPU_DEFAULT = ("torch", "numpy", "onnxruntime")


@dataclass
class Cell:
    """One measured (backend, batch) cell; times in microseconds per step."""

    backend: str
    batch: int
    p50_us: float = float("nan")
    p99_us: float = float("nan")
    steps: int = 0
    note: str = ""
    precision: str = ""


def bench_model(model: str | None, in_features: int = 48) -> tuple[PfesNet, str]:
    """The network to time and a label saying which it is."""
    if model is not None or DEFAULT_MODEL_PATH.is_file():
        ck = load_checkpoint(model)
        return ck.net, f"{ck.path.name} (F={ck.config.in_features})"
    torch.manual_seed(0)
    net = PfesNet(ModelConfig(in_features=in_features)).eval()
    return net, f"random default-size model (F={in_features}, no default.pt yet)"


def time_engine(engine: StreamEngine, batch: int, warmup: int, steps: int,
                seed: int = 0) -> np.ndarray:
    """Per-step seconds of ``engine.step`` over the first ``batch`` open slots (opened here)."""
    while len(engine.open_slots) < batch:
        engine.open_slot()
    slots = [int(s) for s in engine.open_slots[:batch]]
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(8, batch, engine.in_features)).astype(np.float32)
    valid = np.ones(batch, bool)
    for i in range(warmup):
        engine.step(slots, xs[i % 8], valid)
    out = np.empty(steps)
    clock = time.perf_counter
    for i in range(steps):
        t0 = clock()
        engine.step(slots, xs[i % 8], valid)
        out[i] = clock() - t0
    return out


def run_grid(net: PfesNet, backends: Sequence[str], batches: Sequence[int], device: str,
             warmup: int, steps: int,
             make: Callable[[str, int], Backend | str] | None = None,
             deadline: float | None = None) -> list[Cell]:
    """Time every (backend, batch). A backend that fails to build is reported, not raised.

    ``make(name, max_streams)`` may return a prebuilt backend (e.g. with chosen buckets);
    ``deadline`` (``time.monotonic()``) skips cells once passed.
    """
    cells = []
    max_b = max(batches)
    for name in backends:
        try:
            be = make(name, max_b) if make else name
            eng = StreamEngine(net, be, max_streams=max_b, device=device)
            prec = eng.backend.precision
        except PfesError as e:
            cells += [Cell(name, b, note=f"unavailable: {e}") for b in batches]
            continue
        for b in batches:
            if deadline is not None and time.monotonic() > deadline:
                cells.append(Cell(name, b, note="skipped: out of time"))
                continue
            try:
                t = time_engine(eng, b, warmup, steps)
            except Exception as e:  # one broken cell must not hide the others
                log.exception("%s batch %d failed", name, b)
                cells.append(Cell(name, b, note=f"failed: {type(e).__name__}: {e}"[:120]))
                continue
            cells.append(Cell(name, b, float(np.percentile(t, 50) * 1e6),
                              float(np.percentile(t, 99) * 1e6), steps, precision=prec))
    return cells


def format_table(cells: Sequence[Cell], floor_us: float | None = None) -> str:
    """A markdown table; with ``floor_us`` a column of p50 / floor."""
    head = "| backend | precision | batch | p50 us | p99 us | p50 per stream us |"
    sep = "|---|---|---:|---:|---:|---:|"
    if floor_us:
        head += " p50 / floor |"
        sep += "---:|"
    lines = [head, sep]
    for c in cells:
        if c.steps == 0:
            lines.append(f"| {c.backend} | | {c.batch} | {c.note} | | |" + (" |" if floor_us else ""))
            continue
        row = (f"| {c.backend} | {c.precision} | {c.batch} | {c.p50_us:.1f} | {c.p99_us:.1f} "
               f"| {c.p50_us / c.batch:.2f} |")
        if floor_us:
            row += f" {c.p50_us / floor_us:.1f} |"
        lines.append(row)
    return "\n".join(lines)


def environment() -> str:
    """Library versions and the machine, one line."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}",
             f"numpy {np.__version__}", f"{os.cpu_count()} x {cpu}",
             f"torch threads {torch.get_num_threads()}"]
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def _ints(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be >= 1")
    return vals


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backends", default=",".join(CPU_DEFAULT),
                   help=f"comma-separated, from: {', '.join(BACKENDS)} (default: %(default)s)")
    p.add_argument("--batch-sizes", type=_ints, default=[1, 8, 64, 256, 1024],
                   help="comma-separated batch sizes (default: 1,8,64,256,1024)")
    p.add_argument("--model", help="checkpoint to time (default: the bundled model, if any)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--steps", type=int, default=300, help="timed steps per cell")
    p.add_argument("--warmup", type=int, default=50, help="untimed steps per cell first")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: lowest latency for one stream, and "
                   "stable on a shared machine; 0 leaves torch's default)")


def main(args: argparse.Namespace) -> int:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise InputError(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if args.steps < 1 or args.warmup < 0:
        raise InputError("--steps must be >= 1 and --warmup >= 0")
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        net, label = bench_model(args.model)
        cells = run_grid(net, backends, args.batch_sizes, args.device, args.warmup, args.steps)
        env = environment()
    finally:
        torch.set_num_threads(threads)
    print(f"# engine step latency, {args.device}, model: {label}")
    print(f"# {env}")
    print(format_table(cells))
    return 0
