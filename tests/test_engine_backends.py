"""Every backend against the PyTorch reference (PfesNet.forward) on random streams."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from test_engine_runtime import run_random_streams

from engine.backends import BACKENDS, create_backend, get_backend
from engine.backends.base import bucket_for, default_buckets
from engine.backends.cuda_graph import CudaGraphBackend
from engine.model import ModelConfig, PfesNet
from pfes.errors import DependencyError, InputError

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None


def _net(lookahead: int, seed: int = 0, **kw) -> PfesNet:
    torch.manual_seed(seed)
    cfg = dict(in_features=6, channels=16, dilations=(1, 2, 4), proj_dim=8)
    cfg.update(kw)
    return PfesNet(ModelConfig(lookahead_frames=lookahead, **cfg)).eval()


CPU_BACKENDS = ["torch", "numpy"] + (["onnxruntime"] if HAS_ORT else [])


@pytest.mark.parametrize("lookahead", [0, 3])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cpu_backend_matches_offline_forward(backend, lookahead):
    run_random_streams(_net(lookahead, seed=1), backend, seed=10 + lookahead, max_streams=5)


@pytest.mark.parametrize("backend", CPU_BACKENDS[1:])
def test_default_sized_model_single_and_batched(backend):
    """ModelConfig defaults (64 channels, dilations up to 16) and a kernel-size-1 variant."""
    for net in (_net(2, in_features=48, channels=64, dilations=(1, 2, 4, 8, 16), proj_dim=64),
                _net(1, kernel_size=1)):
        ref = create_backend("torch", net, 6)
        got = create_backend(backend, net, 6)
        rng = np.random.default_rng(0)
        f = net.cfg.in_features
        for _ in range(30):
            slots = rng.choice(6, int(rng.integers(1, 7)), replace=False)
            x = rng.normal(size=(len(slots), f)).astype(np.float32)
            v = rng.random(len(slots)) > 0.1
            x[~v] = np.nan  # garbage on invalid frames must not matter
            a, b = ref.step(slots, x, v), got.step(slots, x, v)
            assert np.max(np.abs(a[0] - b[0])) <= 1e-5
            assert np.max(np.abs(a[1] - b[1])) <= 1e-5


@pytest.mark.parametrize("copies,packed", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("lookahead", [0, 2])
def test_cuda_graph_buffers_and_buckets_without_capture(lookahead, copies, packed):
    """The static-buffer, bucketed step (padding rows on the scratch slot) on the CPU, with
    the host <-> device copies outside or inside the (here uncaptured) runner, and with the
    packed few-kernel body."""
    net = _net(lookahead, seed=2)
    backend = CudaGraphBackend(net, 4, "cpu", buckets=(1, 2, 4), capture=False,
                               copies_in_graph=copies, packed=packed)
    run_random_streams(net, backend, seed=5, max_streams=4)
    assert backend._runners.keys() <= {1, 2, 4} and len(backend._runners) >= 2


@pytest.mark.slow
def test_compile_backend_on_cpu():
    """torch.compile of the bucketed step (one bucket to keep compile time down)."""
    from engine.backends.compiled import CompiledBackend

    net = _net(1, seed=3)
    backend = CompiledBackend(net, 3, "cpu", buckets=(3,))
    run_random_streams(net, backend, seed=7, n_streams=4, max_streams=3)


def test_buckets():
    assert default_buckets(1) == (1,)
    assert default_buckets(64) == (1, 2, 4, 8, 16, 32, 64)
    assert default_buckets(100)[-2:] == (64, 100)
    assert bucket_for(3, (1, 2, 4)) == 4 and bucket_for(1, (1, 2, 4)) == 1
    with pytest.raises(InputError):
        bucket_for(5, (1, 2, 4))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda-graph", "compile", "torch"])
def test_gpu_backends_say_why_without_cuda(name):
    net = _net(0)
    devices = ("cpu", "cuda") if name == "cuda-graph" else ("cuda",)  # the others run on cpu
    for device in devices:
        with pytest.raises(DependencyError, match="CUDA"):
            create_backend(name, net, 4, device)


@pytest.mark.skipif(importlib.util.find_spec("torch_tensorrt") is not None,
                    reason="torch_tensorrt is installed")
def test_tensorrt_missing_gives_install_hint():
    with pytest.raises(DependencyError, match=r"pip install pfes\[tensorrt\]"):
        create_backend("tensorrt", _net(0), 4, "cuda")


def test_registry():
    assert set(BACKENDS) == {"torch", "numpy", "onnxruntime", "cuda-graph", "compile", "tensorrt"}
    for name in ("torch", "numpy", "cuda-graph", "compile", "tensorrt"):
        assert get_backend(name).name == name
    with pytest.raises(InputError, match="unknown backend"):
        get_backend("tpu")
    with pytest.raises(InputError):
        create_backend("numpy", _net(0), 4, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["torch", "cuda-graph", "compile"])
def test_gpu_backends_match_reference(name):
    torch.backends.cuda.matmul.allow_tf32 = False
    run_random_streams(_net(2, seed=4), name, seed=3, device="cuda", atol=1e-5)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=1), dict(kernel_size=2, dilations=(1, 3)), dict(dilations=(1, 2, 4, 8, 16)),
    dict(in_features=67, channels=64, dilations=(1, 2, 4, 8, 16), proj_dim=64)])
def test_packed_step_matches_model_step(kw):
    """The few-kernel rewrite against PfesNet.step on odd shapes (no state, k = 2, default)."""
    from engine.backends.packed import PackedStep

    net = _net(1, seed=6, **kw)
    packed = PackedStep(net)
    n, f = 5, net.cfg.in_features
    state_ref = net.init_state(n)
    state = packed.init_state(n + 1, "cpu")
    rng = np.random.default_rng(1)
    for _ in range(25):
        slots = np.sort(rng.choice(n, int(rng.integers(1, n + 1)), replace=False))
        x = torch.as_tensor(rng.normal(size=(len(slots), f)).astype(np.float32))
        v = torch.as_tensor(rng.random(len(slots)) > 0.2)
        x[~v] = float("nan")
        sl = torch.as_tensor(slots)
        with torch.no_grad():
            res, new = net.step(x, v, [s[sl] for s in state_ref])
            for s, ns in zip(state_ref, new, strict=True):
                s[sl] = ns
            inp = torch.cat([x, v.float()[:, None], sl.float()[:, None]], dim=1)
            out = torch.empty(len(slots), 3)
            packed(state, inp, out)
        assert torch.allclose(out[:, 0], res.intensity, atol=1e-5)
        assert torch.allclose(out[:, 1:], res.apex, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("packed", [False, True])
def test_gpu_graph_with_captured_copies_matches_reference(packed):
    torch.backends.cuda.matmul.allow_tf32 = False
    net = _net(2, seed=4)
    backend = CudaGraphBackend(net, 4, "cuda", buckets=(1, 2, 4), copies_in_graph=True,
                               packed=packed)
    run_random_streams(net, backend, seed=3, max_streams=4, device="cuda", atol=1e-5)
