"""All GPU engine measurements in one call, a table printed last.

    python benchmarks/gpu_bench.py                 # on the GPU machine, from the repo root
    python benchmarks/gpu_bench.py --device cpu --quick   # smoke test anywhere

Needs only what the GPU image has (torch with CUDA, numpy, Python 3.12): it imports
``engine`` and ``pfes`` from this checkout and installs nothing. Budget: under 8 minutes
(``--budget-s``, default 420); cells past the budget are reported as skipped.

Measured, for batch sizes 1, 8, 64, 256, 1024 and each backend (cuda-graph, compile, torch
eager, and the variants in ``VARIANTS``): ``StreamEngine.step`` wall time p50 / p99 after
warm-up, numpy in and out, including the host-device copies and the final synchronisation.
Each backend's outputs are checked against the fp32 CPU reference first (max abs difference).

The floor each time is compared with: ``max(empty graph launch, weight bytes / bandwidth)``,
where the empty graph launch is the replay + synchronise of a captured graph holding one
one-element kernel, and the bandwidth is measured with a large device-to-device copy.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.backends import create_backend  # noqa: E402
from engine.backends.cuda_graph import CudaGraphBackend  # noqa: E402
from engine.runtime import StreamEngine  # noqa: E402
from pfes.commands.bench import bench_model, environment, format_table, run_grid  # noqa: E402

GPU_BACKENDS = ("cuda-graph", "compile", "torch", "cuda-graph-plain", "cuda-graph-plain+compile",
                "compile-nograph")  # most important first
VARIANTS = {  # measured variants beyond the registry's backends: what each one is
    "cuda-graph-plain": "PfesNet.step captured as written, copies outside the graph",
    "cuda-graph-plain+compile": "the same with the body compiled by Inductor",
    "compile-nograph": "Inductor-compiled PfesNet.step body launched from Python, no graph",
    "compile-autotune": "the compile backend with mode max-autotune-no-cudagraphs",
}


def make_variant(net, name: str, max_streams: int, device: str,
                 buckets: tuple[int, ...]):
    """A registry backend or one of VARIANTS, with these batch buckets."""
    cuda = device.startswith("cuda")
    from engine.backends.compiled import CompiledBackend

    if name == "cuda-graph":  # on the CPU: the same buffers, no capture (smoke test)
        return CudaGraphBackend(net, max_streams, device, buckets=buckets, capture=cuda)
    if name in ("compile", "compile-autotune"):
        be = CompiledBackend(net, max_streams, device, buckets=buckets,
                             mode="max-autotune-no-cudagraphs" if "autotune" in name else None)
    elif name.startswith("cuda-graph-plain") or name == "compile-nograph":
        be = CudaGraphBackend(net, max_streams, device, buckets=buckets,
                              capture=cuda and name != "compile-nograph",
                              compile_body="compile" in name, copies_in_graph=False,
                              packed=False)
    else:
        return create_backend(name, net, max_streams, device)
    be.name = name
    return be


def _percentiles(t: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(t, 50) * 1e6), float(np.percentile(t, 99) * 1e6)


def empty_graph_launch_us(device: str, n: int) -> tuple[float, float]:
    """p50 / p99 of replaying a one-kernel CUDA graph and waiting for it."""
    x = torch.zeros(1, device=device)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        x.add_(1.0)
    torch.cuda.current_stream(device).wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        x.add_(1.0)
    stream = torch.cuda.current_stream(device)
    for _ in range(50):
        g.replay()
    stream.synchronize()
    t = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        g.replay()
        stream.synchronize()
        t[i] = time.perf_counter() - t0
    return _percentiles(t)


def bandwidth_gbs(device: str, mib: int, reps: int) -> float:
    """Device memory bandwidth from a device-to-device copy (read + write bytes / time)."""
    a = torch.empty(mib * 2**20 // 4, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        b.copy_(a)
    end.record()
    torch.cuda.synchronize(device)
    seconds = start.elapsed_time(end) / 1e3 / reps
    return 2 * a.numel() * 4 / seconds / 1e9


def gpu_description(device: str) -> str:
    if not device.startswith("cuda"):
        return "no GPU (CPU run)"
    props = torch.cuda.get_device_properties(device)
    try:
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20,
        ).stdout.strip().splitlines()[0]
    except Exception:  # nvidia-smi missing or slow: the driver is then unknown
        driver = "unknown"
    return (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, driver {driver}, "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
            f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}")


def check_parity(net, name: str, make, device: str, batch: int = 8, steps: int = 40) -> float:
    """Max abs difference of a backend's outputs vs the fp32 CPU torch reference."""
    ref = create_backend("torch", net, batch, "cpu")
    got = StreamEngine(net, make(name, batch), max_streams=batch, device=device).backend
    rng = np.random.default_rng(0)
    slots = np.arange(batch)
    worst = 0.0
    for _ in range(steps):
        x = rng.normal(size=(batch, net.cfg.in_features)).astype(np.float32)
        v = rng.random(batch) > 0.1
        a, b = ref.step(slots, x, v), got.step(slots, x, v)
        worst = max(worst, float(np.abs(a[0] - b[0]).max()), float(np.abs(a[1] - b[1]).max()))
    return worst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="few steps and small batches (smoke test)")
    p.add_argument("--backends", default=None,
                   help=f"comma-separated from {GPU_BACKENDS} and {tuple(VARIANTS)}")
    p.add_argument("--batch-sizes", default=None, help="default 1,8,64,256,1024 (quick: 1,8)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per cell (default 500)")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop starting cells after this")
    p.add_argument("--model", default=None)
    args = p.parse_args()
    t_start = time.monotonic()
    deadline = t_start + args.budget_s
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("gpu_bench: no CUDA device here; run with --device cpu for a smoke test")
        return 2
    batches = [int(b) for b in (args.batch_sizes or ("1,8" if args.quick else
                                                     "1,8,64,256,1024")).split(",")]
    steps = args.steps or (20 if args.quick else 500)
    warmup = 5 if args.quick else 100
    if args.backends:
        backends = args.backends.split(",")
    else:
        backends = list(GPU_BACKENDS) if cuda else ["torch", "cuda-graph-plain", "cuda-graph"]
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 parity with the CPU reference
        torch.backends.cudnn.allow_tf32 = False
    net, label = bench_model(args.model)
    buckets = tuple(sorted(set(batches)))

    def make(name: str, max_streams: int):
        bk = tuple(b for b in buckets if b <= max_streams) or (max_streams,)
        if bk[-1] != max_streams:
            bk = bk + (max_streams,)
        return make_variant(net, name, max_streams, args.device, bk)

    lines = [f"# gpu_bench {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"# device: {gpu_description(args.device)}",
             f"# {environment()}",
             f"# model: {label}; precision fp32 (TF32 off); steps {steps} after {warmup} warm-up",
             f"# command: python {' '.join(sys.argv)}"]
    floor = None
    weight_bytes = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    state_bytes = 4 * net.cfg.channels * sum(b.pad for b in net.blocks)
    if cuda:
        lp50, lp99 = empty_graph_launch_us(args.device, 200 if args.quick else 2000)
        bw = bandwidth_gbs(args.device, 64 if args.quick else 1024, 5 if args.quick else 20)
        bw_us = weight_bytes / (bw * 1e9) * 1e6
        floor = max(lp50, bw_us)
        lines += [f"# floor: empty graph launch p50 {lp50:.1f} us (p99 {lp99:.1f}); weights "
                  f"{weight_bytes / 1024:.0f} KiB / {bw:.0f} GB/s = {bw_us:.2f} us; "
                  f"floor = {floor:.1f} us; state {state_bytes / 1024:.1f} KiB per stream "
                  "read + written per step"]
    else:
        lines.append("# floor: n/a on the CPU")
    for name in backends:
        if time.monotonic() > deadline:
            lines.append(f"# parity {name}: skipped (out of time)")
            continue
        try:
            diff = check_parity(net, name, make, args.device)
            lines.append(f"# parity {name}: max |out - CPU fp32 reference| = {diff:.2e}")
        except Exception as e:  # report and go on: one broken backend must not hide the rest
            lines.append(f"# parity {name}: failed ({type(e).__name__}: {str(e)[:150]})")
    cells = run_grid(net, backends, batches, args.device, warmup, steps, make=make,
                     deadline=deadline)
    lines.append(f"# total {time.monotonic() - t_start:.0f} s")
    print("\n".join(lines))
    print(format_table(cells, floor_us=floor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
