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
