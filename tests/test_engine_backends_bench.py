"""The latency benchmarks run end to end (tiny settings) and print their tables."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from pfes.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


def test_pfes_bench_prints_a_table(capsys):
    rc = cli_main(["bench", "--backends", "torch,numpy", "--batch-sizes", "1,3",
                   "--steps", "3", "--warmup", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    rows = [ln for ln in out.splitlines() if ln.startswith("| torch") or ln.startswith("| numpy")]
    assert len(rows) == 4 and "p50 us" in out and "torch 2." in out


def test_pfes_bench_rejects_unknown_backend_and_bad_sizes(capsys):
    assert cli_main(["bench", "--backends", "tpu"]) == 2
    with pytest.raises(SystemExit) as e:
        cli_main(["bench", "--batch-sizes", "0,x"])
    assert e.value.code == 2


def test_unavailable_backend_is_reported_not_raised(capsys):
    assert cli_main(["bench", "--backends", "tensorrt,numpy", "--batch-sizes", "1",
                     "--steps", "2", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "unavailable" in out and "| numpy | fp32 | 1 |" in out


def test_gpu_bench_smoke_on_cpu(monkeypatch, capsys):
    script = ROOT / "benchmarks" / "gpu_bench.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--device", "cpu", "--quick",
                                      "--batch-sizes", "1,4", "--steps", "5"])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(script), run_name="__main__")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "parity cuda-graph-plain: max |out - CPU fp32 reference| = 0.00e+00" in out
    assert "parity cuda-graph: max |out - CPU fp32 reference| = " in out
    last = out.strip().splitlines()
    assert last[-1].startswith("| cuda-graph | fp32 packed | 4 |")  # the table comes last
