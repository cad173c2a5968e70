"""Batch, frame-by-frame and random-chunk feature extraction give the same numbers."""

import numpy as np
import pytest

from stream.feat_mesh import rigid_transform, synthetic_neutral_mesh
from stream.features import FEATURE_NAMES, FeatureExtractor, extract_features
from stream.regions import REGIONS


def _sequence(t: int, seed: int):
    """Noisy head motion, two expressions, a no-face gap and a NaN frame."""
    rng = np.random.default_rng(seed)
    mesh = synthetic_neutral_mesh(iod_px=70.0).astype(np.float64)
    frames = np.repeat(mesh[None], t, axis=0) + rng.normal(0.0, 0.4, (t, 478, 3))
    frames[80:110, list(REGIONS["brow_inner_r"]), 1] -= 6.0
    frames[200:215, list(REGIONS["mouth_corner_l"]), 0] += 3.0
    yaw = np.cumsum(rng.normal(0.0, 0.5, t))
    frames = np.stack(
        [rigid_transform(f, yaw_deg=y, roll_deg=0.3 * y) for f, y in zip(frames, yaw, strict=True)]
    )
    valid = np.ones(t, bool)
    valid[130:150] = False
    frames[130:150] = np.nan
    frames[170, 5] = np.nan  # a tracker glitch: one stable point lost
    return frames.astype(np.float32), valid


@pytest.mark.parametrize("fps", [30.0, 25.0, 60.0])
def test_batch_equals_streaming_equals_chunks(fps):
    frames, valid = _sequence(320, seed=int(fps))
    batch, batch_ok = extract_features(frames, valid, fps)

    fe = FeatureExtractor(fps)
    steps = [fe.push(f if v else None) for f, v in zip(frames, valid, strict=True)]
    stream = np.stack([s[0] for s in steps])
    stream_ok = np.array([s[1] for s in steps])

    rng = np.random.default_rng(7)
    fe = FeatureExtractor(fps)
    parts, oks, i = [], [], 0
    while i < len(frames):
        n = int(rng.integers(1, 40))
        f, o = fe.push_chunk(frames[i : i + n], valid[i : i + n])
        parts.append(f)
        oks.append(o)
        i += n
    chunks = np.concatenate(parts)

    assert batch.dtype == np.float32 and batch.shape == (320, len(fe.names))
    np.testing.assert_array_equal(batch_ok, stream_ok)
    np.testing.assert_array_equal(batch_ok, np.concatenate(oks))
    assert not batch_ok[130:150].any() and not batch_ok[170] and batch_ok.sum() == 299
    assert np.abs(batch - stream).max() <= 1e-6
    assert np.abs(batch - chunks).max() <= 1e-6
    assert np.abs(batch).max() > 0.05  # the expressions are really there


def test_reset_makes_extractor_reusable():
    frames, valid = _sequence(240, seed=3)
    fe = FeatureExtractor(30.0)
    first, _ = fe.push_chunk(frames, valid)
    fe.reset()
    again, _ = fe.push_chunk(frames, valid)
    np.testing.assert_array_equal(first, again)


def _still_face(t: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mesh = synthetic_neutral_mesh(iod_px=70.0).astype(np.float64)
    frames = np.repeat(mesh[None], t, axis=0) + rng.normal(0.0, 0.2, (t, 478, 3))
    return frames, np.ones(t, bool)


def test_despike_removes_short_glitches_and_delays_lasting_jumps():
    from stream.features import FeatureConfig, config_from_spec, feature_spec

    cfg = FeatureConfig(despike_iod=0.08)
    lip = list(REGIONS["upper_lip"])
    clean, valid = _still_face(120)
    glitch = clean.copy()
    glitch[40:42, lip, 1] += 25.0  # a 2-frame tear of 0.36 IOD
    base, _ = extract_features(clean, valid, 30.0, cfg)
    held, _ = extract_features(glitch, valid, 30.0, cfg)
    raw, _ = extract_features(glitch, valid, 30.0)
    assert np.abs(raw - base).max() > 0.1  # without the filter the glitch is in the features
    assert np.abs(held - base).max() < 0.02  # with it only a small alignment wobble is left

    lasting = clean.copy()
    lasting[60:, lip, 1] += 25.0  # a real jump that stays: arrives 3 frames late
    f, _ = extract_features(lasting, valid, 30.0, cfg)
    dy = FEATURE_NAMES.index("upper_lip.dy")
    assert abs(f[62, dy] - base[62, dy]) < 0.02 and f[63, dy] - base[63, dy] > 0.3

    # streaming equals batch; the spec records the filter and rebuilds it; off = no key
    fe = FeatureExtractor(30.0, cfg)
    stream = np.stack([fe.push(x)[0] for x in glitch])
    assert np.abs(stream - held).max() <= 1e-6
    spec = feature_spec(cfg)
    assert spec["despike"] == {"iod": 0.08, "hold_at_30fps": 3}
    assert config_from_spec(spec) == cfg and "despike" not in feature_spec()


def test_core_stable_set_ignores_the_trackers_blink_drag():
    """MediaPipe drags forehead and face-contour points down when the eyes close (measured on
    real pixels, benchmarks/RESULTS.md); the "core" fit does not turn that into region motion."""
    from stream.features import FeatureConfig, config_from_spec, feature_spec
    from stream.regions import STABLE

    frames, valid = _still_face(60, seed=1)
    dragged = frames.copy()
    drag = [p for p in STABLE if p not in (168, 6, 197, 195, 5, 133, 362)]
    dragged[30:40, drag, 1] += 0.04 * 70.0  # 0.04 IOD down for 10 frames
    disp = [i for i, n in enumerate(FEATURE_NAMES) if n.endswith((".dx", ".dy"))]
    for name, limit in (("default", None), ("core", 0.005)):
        cfg = FeatureConfig(stable_set=name)
        a, _ = extract_features(frames, valid, 30.0, cfg)
        b, _ = extract_features(dragged, valid, 30.0, cfg)
        shift = np.abs(a[35, disp] - b[35, disp]).max()
        if limit is None:
            assert shift > 0.01  # the default fit moves every region
        else:
            assert shift < limit
    spec = feature_spec(FeatureConfig(stable_set="core"))
    assert spec["stable_set"]["name"] == "core" and "stable_set" not in feature_spec()
    assert config_from_spec(spec).stable_set == "core"
