"""Where one CUDA-graph engine step spends its time, layer by layer of the call stack.

    python benchmarks/gpu_breakdown.py            # on the GPU machine, from the repo root
    python benchmarks/gpu_breakdown.py --device cpu --quick   # smoke test (no graph parts)

For each variant (a backend or one of ``gpu_bench.VARIANTS``; default: the plain graph of
``PfesNet.step``, the ``cuda-graph`` backend, the ``compile`` backend) and batch size it prints p50 / p99 in microseconds of:

* ``engine``: ``StreamEngine.step`` (what the pipeline calls; numpy in and out);
* ``backend``: the backend's own ``step`` (packing into pinned memory, copies, replay, wait);
* ``replay``: ``graph.replay()`` + synchronise alone (no host work, no copies);
* ``gpu``: device time of one replay, from CUDA events around 200 back-to-back replays;
* ``kernels``: CUDA kernels one eager run of the step body launches (torch profiler).

Needs only torch and numpy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_bench import make_variant  # noqa: E402

from engine.runtime import StreamEngine  # noqa: E402
from pfes.commands.bench import bench_model  # noqa: E402


def _pct(t: np.ndarray) -> str:
    return f"{np.percentile(t, 50) * 1e6:7.1f} / {np.percentile(t, 99) * 1e6:7.1f}"


def _time(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def count_kernels(fn) -> str:
    """CUDA kernels (and memcpy/memset) launched by one call of ``fn``."""
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        names = [e.name for e in prof.events() if str(e.device_type).endswith("CUDA")]
        return f"{len(names)}"
    except Exception as e:  # profiler unavailable: say so, keep the rest
        return f"n/a ({type(e).__name__})"


def measure(net, variant: str, b: int, device: str, n: int) -> str:
    """One table row: the breakdown of ``variant`` at batch ``b``."""
    cuda = device.startswith("cuda")
    rng = np.random.default_rng(0)
    be = make_variant(net, variant, b, device, (b,))
    eng = StreamEngine(net, be, max_streams=b, device=device)
    slots = [eng.open_slot() for _ in range(b)]
    x = rng.normal(size=(b, net.cfg.in_features)).astype(np.float32)
    v = np.ones(b, bool)
    sl = np.asarray(slots, np.int64)
    for _ in range(50):
        eng.step(slots, x, v)
    t_eng = _time(lambda: eng.step(slots, x, v), n)
    t_be = _time(lambda: be.step(sl, x, v), n)
    replay = gpu = kern = "n/a"
    if cuda:
        graph = getattr(be, "_graphs", {}).get(b)
        if graph is None:
            return f"| {variant} | {b} | {_pct(t_eng)} | {_pct(t_be)} | no graph | | |"

        stream = torch.cuda.current_stream(device)

        def rep() -> None:
            graph.replay()
            stream.synchronize()

        replay = _pct(_time(rep, n))
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(200):
            graph.replay()
        e1.record()
        torch.cuda.synchronize()
        gpu = f"{e0.elapsed_time(e1) * 1e3 / 200:.1f}"
        inp, out = be._dev_in[b], be._dev_out[b]
        with torch.inference_mode():
            kern = count_kernels(lambda: be._body(inp, out))
    return (f"| {variant} | {b} | {_pct(t_eng)} | {_pct(t_be)} | {replay} | {gpu} "
            f"| {kern} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch-sizes", default="1,256")
    p.add_argument("--variants", default="cuda-graph-plain,cuda-graph,compile")
    args = p.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("gpu_breakdown: no CUDA device here; use --device cpu --quick")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 20 if args.quick else 1000
    net, label = bench_model(None)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    print(f"# gpu_breakdown, model {label}, torch {torch.__version__}, {n} steps per figure")
    print("| variant | batch | engine p50/p99 us | backend | replay | gpu us | kernels |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for variant in args.variants.split(","):
        for b in batches:
            print(measure(net, variant, b, args.device, n), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
