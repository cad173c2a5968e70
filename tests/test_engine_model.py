"""The two-branch causal network: shapes, causality, and streaming == offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.model import ModelConfig, PfesNet, receptive_field
from pfes.errors import ModelError


def _net(lookahead: int, seed: int = 0, **kw) -> PfesNet:
    torch.manual_seed(seed)
    cfg = ModelConfig(in_features=7, channels=16, dilations=(1, 2, 4), proj_dim=8,
                      lookahead_frames=lookahead, **kw)
    return PfesNet(cfg).eval()


def _stream(net: PfesNet, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run frame by frame, flush with D padding frames, drop the first D outputs."""
    b, t, f = x.shape
    d = net.cfg.lookahead_frames
    state = net.init_state(b)
    inten, apex = [], []
    xs = torch.cat([x, torch.zeros(b, d, f)], dim=1)
    vs = torch.cat([valid, torch.zeros(b, d, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        for i in range(t + d):
            out, state = net.step(xs[:, i], vs[:, i], state)
            if i >= d:
                inten.append(out.intensity)
                apex.append(out.apex)
    return torch.stack(inten, 1), torch.stack(apex, 1)


@pytest.mark.parametrize("lookahead", [0, 5])
def test_streaming_equals_offline(lookahead):
    rng = np.random.default_rng(lookahead)
    net = _net(lookahead)
    for _ in range(4):
        b, t = int(rng.integers(1, 4)), int(rng.integers(1, 60))
        x = torch.from_numpy(rng.normal(size=(b, t, 7)).astype(np.float32))
        valid = torch.from_numpy(rng.random((b, t)) > 0.1)
        with torch.no_grad():
            off = net(x, valid)
        si, sa = _stream(net, x, valid)
        assert off.intensity.shape == (b, t) and off.apex.shape == (b, t, 2)
        assert torch.max(torch.abs(si - off.intensity)) <= 1e-5
        assert torch.max(torch.abs(sa - off.apex)) <= 1e-5


def test_streams_in_a_batch_do_not_leak():
    net = _net(3)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(3, 40, 7)).astype(np.float32))
    valid = torch.ones(3, 40, dtype=torch.bool)
    ref, _ = _stream(net, x, valid)
    x2 = x.clone()
    x2[1] = torch.from_numpy(rng.normal(size=(40, 7)).astype(np.float32)) * 10
    got, _ = _stream(net, x2, valid)
    assert torch.allclose(got[0], ref[0], atol=1e-6)
    assert torch.allclose(got[2], ref[2], atol=1e-6)
    assert not torch.allclose(got[1], ref[1], atol=1e-3)


@pytest.mark.parametrize("lookahead", [0, 4])
def test_output_depends_only_on_past_and_lookahead(lookahead):
    net = _net(lookahead)
    x = torch.randn(1, 50, 7)
    with torch.no_grad():
        a = net(x).intensity
        x2 = x.clone()
        x2[0, 30:] += 5.0
        b = net(x2).intensity
    cut = 30 - lookahead  # outputs before this frame cannot see frame 30
    assert torch.allclose(a[0, :cut], b[0, :cut], atol=1e-6)
    assert not torch.allclose(a[0, cut:], b[0, cut:], atol=1e-4)


def test_receptive_field_and_invalid_frames_are_ignored():
    net = _net(0)
    assert receptive_field(net.cfg) == 1 + 2 * (1 + 2 + 4)
    x = torch.randn(1, 20, 7)
    valid = torch.ones(1, 20, dtype=torch.bool)
    valid[0, 5] = False
    x2 = x.clone()
    x2[0, 5] = 1e3  # garbage on an invalid frame must not matter
    with torch.no_grad():
        assert torch.allclose(net(x, valid).intensity, net(x2, valid).intensity)


def test_bad_config_and_shapes_raise_model_error():
    with pytest.raises(ModelError):
        ModelConfig(in_features=0)
    with pytest.raises(ModelError):
        ModelConfig.from_dict({"in_features": 3, "bogus": 1})
    net = _net(0)
    with pytest.raises(ModelError):
        net(torch.randn(1, 10, 8))
    assert ModelConfig.from_dict(net.cfg.to_dict()) == net.cfg


@pytest.mark.parametrize("lookahead,matrix", [(0, False), (4, False), (0, True), (4, True)])
def test_folded_input_scaling_equals_the_scaled_network(lookahead, matrix):
    """Training feeds (x - shift) * scale (or scale @ (x - shift) for a whitening matrix);
    folding moves that into the input layer exactly, so the saved network takes raw features,
    offline and streaming, invalid frames included."""
    rng = np.random.default_rng(3)
    net = _net(lookahead)
    shift = torch.from_numpy(rng.normal(0, 0.01, 7).astype(np.float32))
    scale = torch.from_numpy(rng.uniform(50, 300, 7).astype(np.float32))
    if matrix:  # a full matrix, not symmetric: rows and columns must not be swapped
        scale = torch.diag(scale) + torch.from_numpy(rng.normal(0, 40, (7, 7)).astype(np.float32))
    x = torch.from_numpy(rng.normal(0, 0.01, (2, 50, 7)).astype(np.float32))
    valid = torch.from_numpy(rng.random((2, 50)) > 0.2)
    with torch.no_grad():
        plain = net(x, valid).intensity
        net.set_input_scaling(shift, scale)
        assert net.input_scaling_active
        scaled = net(x, valid)
        # the scaling changes what the network computes (else this test proves nothing)
        assert torch.max(torch.abs(scaled.intensity - plain)) > 1e-2
        net.fold_input_scaling()
        assert not net.input_scaling_active
        folded = net(x, valid)
    assert torch.max(torch.abs(folded.intensity - scaled.intensity)) <= 1e-4
    assert torch.max(torch.abs(folded.apex - scaled.apex)) <= 1e-4
    si, sa = _stream(net, x, valid)
    assert torch.max(torch.abs(si - scaled.intensity)) <= 1e-4


def test_input_scaling_is_checked_and_never_saved(tmp_path):
    from engine.checkpoint import save_checkpoint

    net = _net(0)
    with pytest.raises(ModelError, match="7 shifts"):
        net.set_input_scaling(torch.zeros(6), torch.ones(6))
    with pytest.raises(ModelError, match="positive"):
        net.set_input_scaling(torch.zeros(7), torch.zeros(7))
    with pytest.raises(ModelError, match="7 x 7"):
        net.set_input_scaling(torch.zeros(7), torch.eye(6))
    with pytest.raises(ModelError, match="finite"):
        net.set_input_scaling(torch.zeros(7), torch.full((7, 7), float("nan")))
    net.set_input_scaling(torch.zeros(7), torch.full((7,), 2.0))
    with pytest.raises(ModelError, match="fold_input_scaling"):
        save_checkpoint(tmp_path / "m.pt", net, {})
    assert not (tmp_path / "m.pt").exists()
    net.fold_input_scaling()
    save_checkpoint(tmp_path / "m.pt", net, {})
