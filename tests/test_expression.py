"""The real-face stage: expression evidence, gating, start-up, 'what moved', live = offline."""

from __future__ import annotations

import numpy as np
import pytest

from engine.detector import DetectorConfig
from stream.blendshapes import BLENDSHAPE_NAMES, load_blendshape_model
from stream.expression import (
    GROUP_NAMES,
    ExpressionConfig,
    ExpressionTracker,
    FaceFeatureExtractor,
    RealFaceSpotter,
    blendshapes_per_frame,
    expression_evidence,
    fuse_intensity,
    what_moved,
)
from stream.features import FeatureExtractor, extract_features
from training.synth_face import neutral_mesh

FPS = 25.0
IDX = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}


def _bs(T: int, **spans: list[tuple[int, int, float]]) -> np.ndarray:
    """(T, 52) blendshapes, 0.02 everywhere, channels set to a value on [start, end)."""
    out = np.full((T, len(BLENDSHAPE_NAMES)), 0.02, dtype=np.float32)
    for ch, items in spans.items():
        for s, e, v in items:
            out[s:e, IDX[ch]] = v
    return out


def _run(bs: np.ndarray, intensity: np.ndarray | None = None, apex=(0.9, 0.1)):
    T = len(bs)
    inten = np.zeros(T) if intensity is None else intensity
    sp = RealFaceSpotter(DetectorConfig(), FPS)
    out = []
    for t in range(T):
        out += sp.push(t, float(inten[t]), np.asarray(apex), True, bs[t])
    return out + sp.flush()


def test_expression_present_at_frame_0_is_found():
    bs = _bs(150, mouthSmileLeft=[(0, 60, 0.7)], mouthSmileRight=[(0, 60, 0.75)])
    insts = _run(bs)
    assert len(insts) == 1
    i = insts[0]
    assert i.onset == 0 and 55 <= i.offset <= 64 and i.kind == "macro"
    moved, words = what_moved(bs, i.onset, i.apex)
    assert words == "smile"
    assert [n for n, _ in moved] == ["mouthSmileRight", "mouthSmileLeft"]
    assert moved[0][1] == pytest.approx(0.55, abs=1e-3)  # 0.75 - the rest ceiling 0.2 (onset 0)


def test_speech_and_blinks_alone_raise_nothing():
    T = 250
    t = np.arange(T)
    bs = _bs(T)
    bs[:, IDX["jawOpen"]] = 0.35 + 0.35 * np.sin(2 * np.pi * 4.0 * t / FPS)  # syllables
    bs[:, IDX["mouthPressLeft"]] = 0.3 * (np.sin(2 * np.pi * 3.0 * t / FPS) > 0)
    for s in range(10, T, 60):  # blinks
        bs[s : s + 4, IDX["eyeBlinkLeft"]] = 0.8
        bs[s : s + 4, IDX["eyeBlinkRight"]] = 0.8
    # the network fires twice on this talking: both are silenced by the gate
    inten = np.zeros(T)
    inten[40:52] = 0.9
    inten[120:126] = 0.9
    assert _run(bs, inten) == []
    ev = expression_evidence(bs, np.ones(T, bool), FPS)
    assert ev.max() == 0.0


def test_network_peak_passes_where_the_face_shows_an_expression():
    T = 200
    bs = _bs(T, browDownLeft=[(80, 92, 0.45)], browDownRight=[(80, 92, 0.45)])
    inten = np.zeros(T)
    inten[82:90] = 0.9  # a brief network run inside a 12-frame frown
    insts = _run(bs, inten, apex=(0.2, 0.9))
    assert len(insts) == 1 and 80 <= insts[0].apex <= 92
    # the same network peak with a still face is dropped
    assert _run(_bs(T), inten, apex=(0.2, 0.9)) == []


def test_resting_level_is_capped_until_a_window_is_seen_then_learned():
    cfg = ExpressionConfig()
    n_window = int(cfg.window_s * FPS)
    bs = _bs(3 * n_window, browDownLeft=[(0, 3 * n_window, 0.6)], browDownRight=[(0, 3 * n_window, 0.6)])
    ev = expression_evidence(bs, np.ones(len(bs), bool), FPS, cfg)
    g = GROUP_NAMES.index("brow_lower")
    assert ev[10, g] == pytest.approx(0.6 - cfg.ceiling[g], abs=1e-6)  # capped rest
    assert ev[-1, g] == pytest.approx(0.0, abs=1e-6)  # a face that rests frowning


def test_push_equals_batch_with_gaps():
    rng = np.random.default_rng(0)
    bs = rng.uniform(0, 0.8, size=(120, len(BLENDSHAPE_NAMES))).astype(np.float32)
    valid = rng.uniform(size=120) > 0.1
    bs[~valid] = np.nan
    batch = expression_evidence(bs, valid, FPS)
    tr = ExpressionTracker(FPS)
    live = np.stack([tr.push(bs[t], bool(valid[t])) for t in range(120)])
    np.testing.assert_array_equal(batch, live)
    assert (batch[~valid] == 0).all()


def test_fuse_hand_values():
    cfg = ExpressionConfig(gate_lo=0.1, gate_hi=0.3, full_evidence=0.5, evidence_gain=0.9)
    ev = np.zeros((3, len(GROUP_NAMES)), np.float32)
    ev[1, 0] = 0.2  # gate 0.5, direct 0.36
    ev[2, 2] = 0.6  # gate 1, direct 0.9
    out = fuse_intensity(np.array([0.8, 0.8, 0.5]), ev, cfg)
    np.testing.assert_allclose(out, [0.0, 0.4, 0.9], atol=1e-6)


def test_live_features_equal_offline_features():
    rng = np.random.default_rng(3)
    base = neutral_mesh().astype(np.float32)
    base = base * 200.0 + np.array([320.0, 180.0, 0.0], np.float32) if base.max() < 5 else base
    T = 40
    lm = base[None] + rng.normal(0, 0.4, size=(T, *base.shape)).astype(np.float32)
    lm[:, :, 1] += np.linspace(0, 3, T, dtype=np.float32)[:, None]
    valid = np.ones(T, bool)
    valid[17] = False
    lm[17] = np.nan
    model = load_blendshape_model()
    fx = FaceFeatureExtractor(FeatureExtractor(FPS), model)
    live = np.stack([fx.push(None if not valid[t] else lm[t])[0] for t in range(T)])
    feats, _ = extract_features(lm, valid, FPS)
    F = feats.shape[1]
    np.testing.assert_array_equal(live[:, :F], feats.astype(np.float32))
    bs = blendshapes_per_frame(model, lm, valid)  # what the offline path runs
    np.testing.assert_array_equal(live[:, F:][valid], bs[valid])
    assert np.isnan(live[17, F:]).all()


def test_event_carries_what_moved_on_the_wire_and_in_listen():
    import json

    from pfes.commands.listen import _line
    from stream.events import event_from_instance, parse_event

    class Inst:
        onset, apex, offset, kind, score, class_prob = 10, 15, 30, "macro", 0.8, 1.0

    ev = event_from_instance(Inst(), seq=3, stream="cam", track=0, pts_of=lambda f: f / 25,
                             emitted_frame=31, emitted_at=1.0, latency_ms=2.0, what="smile",
                             moved=[("mouthSmileRight", 0.6234), ("mouthSmileLeft", 0.58)])
    body = json.loads(ev.to_json())
    assert body["what"] == "smile" and body["moved"] == [["mouthSmileRight", 0.623], ["mouthSmileLeft", 0.58]]
    assert parse_event(body) == ev
    old = {k: v for k, v in body.items() if k not in ("what", "moved")}  # a publisher without them
    assert parse_event(old).what == ""
    assert _line("event", body).endswith("smile (mouthSmileRight +0.62  mouthSmileLeft +0.58)")
