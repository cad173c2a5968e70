"""StreamEngine: streams join and leave at random times; each equals its own offline forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.model import ModelConfig, PfesNet
from engine.runtime import StreamEngine
from pfes.errors import InputError


def _net(lookahead: int, seed: int = 0) -> PfesNet:
    torch.manual_seed(seed)
    cfg = ModelConfig(in_features=6, channels=16, dilations=(1, 2, 4), proj_dim=8,
                      lookahead_frames=lookahead)
    return PfesNet(cfg).eval()


def _offline(net: PfesNet, x: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out = net(torch.from_numpy(x[None]), torch.from_numpy(valid[None]))
    return out.intensity[0].numpy(), out.apex[0].numpy()


def run_random_streams(net: PfesNet, backend: str, seed: int, n_streams: int = 7,
                       max_streams: int = 4, device: str = "cpu", atol: float = 1e-5) -> None:
    """Streams of random length join and leave at random; every output checked offline."""
    rng = np.random.default_rng(seed)
    f = net.cfg.in_features
    eng = StreamEngine(net, backend=backend, max_streams=max_streams, device=device)
    d = eng.lookahead_frames
    todo = []
    for _ in range(n_streams):
        t = int(rng.integers(1, 40))
        x = rng.normal(size=(t, f)).astype(np.float32)
        v = rng.random(t) > 0.15
        todo.append({"x": x, "v": v, "i": 0, "inten": {}, "apex": {}})
    live: dict[int, dict] = {}
    done = []
    while todo or live:
        # join: at random, while slots are free
        while todo and len(live) < max_streams and rng.random() < 0.5:
            live[eng.open_slot()] = todo.pop()
        if not live:
            live[eng.open_slot()] = todo.pop()
        # a random subset of live streams steps this tick (others keep their state)
        slots = [s for s in live if rng.random() < 0.7] or [next(iter(live))]
        rng.shuffle(slots)
        xs = np.stack([live[s]["x"][live[s]["i"]] for s in slots])
        vs = np.array([live[s]["v"][live[s]["i"]] for s in slots])
        res = eng.step(slots, xs, vs)
        assert res.frame_delay == d and len(res) == len(slots)
        for k, s in enumerate(slots):
            st = live[s]
            assert bool(res.ready[k]) == (st["i"] >= d)
            if res.ready[k]:
                assert res.frame[k] == st["i"] - d
                st["inten"][int(res.frame[k])] = res.intensity[k]
                st["apex"][int(res.frame[k])] = res.apex[k]
            st["i"] += 1
        for s in [s for s in live if live[s]["i"] == len(live[s]["x"])]:
            st = live.pop(s)
            fl = eng.flush(s)
            assert len(fl) == d
            for k in range(d):
                if fl.ready[k]:
                    st["inten"][int(fl.frame[k])] = fl.intensity[k]
                    st["apex"][int(fl.frame[k])] = fl.apex[k]
            eng.close_slot(s)
            done.append(st)
    assert len(done) == n_streams
    for st in done:
        t = len(st["x"])
        assert sorted(st["inten"]) == list(range(t))
        ref_i, ref_a = _offline(net, st["x"], st["v"])
        got_i = np.array([st["inten"][i] for i in range(t)])
        got_a = np.stack([st["apex"][i] for i in range(t)])
        assert np.max(np.abs(got_i - ref_i)) <= atol
        assert np.max(np.abs(got_a - ref_a)) <= atol


@pytest.mark.parametrize("lookahead", [0, 3])
def test_random_join_leave_torch(lookahead):
    run_random_streams(_net(lookahead), "torch", seed=lookahead)


def test_slots_are_reused_lowest_first_and_errors_are_clear():
    eng = StreamEngine(_net(0), max_streams=3)
    assert [eng.open_slot() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(InputError):
        eng.open_slot()
    eng.close_slot(1)
    assert eng.open_slots == [0, 2]
    assert eng.open_slot() == 1
    with pytest.raises(InputError):
        eng.step([0, 0], np.zeros((2, 6), np.float32), np.ones(2, bool))
    with pytest.raises(InputError):
        eng.step([0], np.zeros((1, 5), np.float32), np.ones(1, bool))
    eng.close_slot(2)
    with pytest.raises(InputError):
        eng.step([2], np.zeros((1, 6), np.float32), np.ones(1, bool))


def test_reused_slot_starts_from_zero_state():
    net = _net(2)
    eng = StreamEngine(net, max_streams=1)
    rng = np.random.default_rng(3)
    s = eng.open_slot()
    for _ in range(10):  # leave history behind
        eng.step([s], rng.normal(size=(1, 6)).astype(np.float32) * 5, np.ones(1, bool))
    eng.close_slot(s)
    s2 = eng.open_slot()
    x = rng.normal(size=(8, 6)).astype(np.float32)
    v = np.ones(8, bool)
    got = [eng.step([s2], x[i:i + 1], v[i:i + 1]) for i in range(8)]
    fl = eng.flush(s2)
    inten = np.concatenate([[r.intensity[0] for r in got if r.ready[0]], fl.intensity[fl.ready]])
    ref, _ = _offline(net, x, v)
    assert np.max(np.abs(inten - ref)) <= 1e-5
    assert not got[0].ready[0] and not got[1].ready[0] and got[2].ready[0]


def test_flush_of_a_stream_shorter_than_lookahead():
    net = _net(4)
    eng = StreamEngine(net, max_streams=2)
    s = eng.open_slot()
    x = np.ones((2, 6), np.float32)
    r = [eng.step([s], x[i:i + 1], np.ones(1, bool)) for i in range(2)]
    assert not any(rr.ready[0] for rr in r)
    fl = eng.flush(s)
    assert fl.ready.tolist() == [False, False, True, True]
    assert fl.frame.tolist() == [-1, -1, 0, 1]
    ref, _ = _offline(net, x, np.ones(2, bool))
    assert np.max(np.abs(fl.intensity[2:] - ref)) <= 1e-5
