"""CPU engine step latency: every CPU backend side by side, one run, a markdown table last.

    python benchmarks/bench_engine.py [--backends torch,numpy,onnxruntime,compile]
                                      [--batch-sizes 1,8,64,256,1024] [--steps 300]

Times ``StreamEngine.step`` (numpy in, numpy out) after warm-up; see ``pfes bench``, which
shares the timing code. ``compile`` (TorchInductor on the CPU) compiles once per batch size
and can take minutes on a small machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from pfes.commands.bench import bench_model, environment, format_table, run_grid  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="torch,numpy,onnxruntime,compile")
    p.add_argument("--batch-sizes", default="1,8,64,256,1024")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--model", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    net, label = bench_model(args.model)
    backends = [b for b in args.backends.split(",") if b]
    batches = [int(b) for b in args.batch_sizes.split(",") if b]
    t0 = time.monotonic()
    cells = run_grid(net, backends, batches, "cpu", args.warmup, args.steps)
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"model: {label}, {time.monotonic() - t0:.0f} s")
    print(f"# {environment()}; command: python {' '.join(sys.argv)}")
    print(format_table(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
