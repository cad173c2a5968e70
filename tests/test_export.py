"""Exported step artifacts load back and give the PyTorch step's outputs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from engine.checkpoint import save_checkpoint
from engine.export import export_step, load_exported
from engine.model import ModelConfig, PfesNet
from pfes.cli import main as cli_main
from pfes.commands.export import verify_export
from pfes.errors import DependencyError, InputError, ModelError

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))


def _net(lookahead: int = 2, kernel_size: int = 3) -> PfesNet:
    torch.manual_seed(0)
    cfg = ModelConfig(in_features=5, channels=12, dilations=(1, 2, 4), proj_dim=6,
                      kernel_size=kernel_size, lookahead_frames=lookahead)
    return PfesNet(cfg).eval()


@pytest.mark.parametrize("fmt,name", [
    pytest.param("onnx", "m.onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="no onnx")),
    ("exported-program", "m.pt2"),
])
def test_round_trip_equals_pytorch_step(tmp_path, fmt, name):
    net = _net()
    path = export_step(net, tmp_path / name, fmt, meta={"feature_spec": {"n": 5}})
    ex = load_exported(path)
    assert ex.meta == {"feature_spec": {"n": 5}}
    assert ex.lookahead_frames == 2 and ex.in_features == 5
    for batch in (1, 4):  # the batch dimension is dynamic
        assert verify_export(net, path, fmt, steps=12, batch=batch) <= 1e-5


@pytest.mark.skipif(not HAS_ONNX, reason="no onnx")
def test_layer_without_history_exports(tmp_path):
    net = _net(0, kernel_size=1)
    path = export_step(net, tmp_path / "k1.onnx", "onnx")
    assert load_exported(path).info["state_shapes"] == []
    assert verify_export(net, path, "onnx", steps=5) <= 1e-5


@pytest.mark.skipif(importlib.util.find_spec("torch_tensorrt") is not None,
                    reason="torch_tensorrt is installed")
def test_tensorrt_export_needs_the_extra(tmp_path):
    with pytest.raises(DependencyError, match=r"pfes\[tensorrt\]"):
        export_step(_net(), tmp_path / "m.ep", "tensorrt")


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError):
        export_step(_net(), tmp_path / "m.x", "tflite")
    with pytest.raises(ModelError):
        load_exported(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a program")
    with pytest.raises(ModelError):
        load_exported(junk)
    with pytest.raises(InputError):
        load_exported(junk, fmt="nope")


@pytest.mark.skipif(not HAS_ONNX, reason="no onnx")
def test_cli_export_and_errors(tmp_path, capsys):
    ck = save_checkpoint(tmp_path / "model.pt", _net(), {"detector": {"open_threshold": 0.5}})
    assert cli_main(["export", "--format", "onnx", "--model", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "load-back check" in out
    ex = load_exported(tmp_path / "model.onnx")
    assert ex.meta["detector"]["open_threshold"] == 0.5
    x = np.zeros((2, 5), np.float32)
    inten, apex, state = ex.step(x, np.ones(2, bool), ex.init_state(2))
    assert inten.shape == (2,) and apex.shape == (2, 2) and len(state) == 3
    assert cli_main(["export", "--format", "onnx", "--model", str(tmp_path / "nope.pt")]) == 4
    assert cli_main(["export", "--format", "tensorrt", "--model", str(ck)]) == 2
