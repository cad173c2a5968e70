"""Per-frame features: rigid-motion invariance, regional isolation, gaps, held expressions."""

import numpy as np
import pytest

from calibration.neutral import NeutralConfig
from pfes.errors import InputError
from stream.feat_mesh import rigid_transform, synthetic_neutral_mesh
from stream.features import FEATURE_NAMES, FeatureConfig, FeatureExtractor, extract_features
from stream.regions import GROUP_NAMES, REGION_GROUPS, REGION_NAMES, REGIONS

FPS = 30.0
IOD_PX = 80.0
N_DISP = 2 * len(REGION_NAMES)
DISP = slice(0, N_DISP)
DIFF = slice(N_DISP, N_DISP + 3 * len(GROUP_NAMES))
ROT = slice(N_DISP + 3 * len(GROUP_NAMES), len(FEATURE_NAMES))


def _mesh() -> np.ndarray:
    return synthetic_neutral_mesh(iod_px=IOD_PX, centre_px=(320.0, 240.0)).astype(np.float64)


def _poses(t: int):
    """Smooth head motion: roll to 20 deg, yaw to 20 deg, pitch to 10 deg, scale 0.5-2, shifts.

    Frame 0 is the identity pose so the track reference is the same as without motion.
    """
    u = np.sin(np.linspace(0.0, 3.0 * np.pi, t)) * np.minimum(1.0, np.arange(t) / 10.0)
    w = np.sin(np.linspace(0.0, 2.0 * np.pi, t))
    for i in range(t):
        yield dict(
            roll_deg=20.0 * u[i],
            yaw_deg=20.0 * w[i],
            pitch_deg=10.0 * u[i] * w[i],
            scale=2.0 ** u[i],
            shift_px=(60.0 * w[i], -40.0 * u[i]),
        )


def _noisy_static(t: int, sigma_iod: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _mesh()[None] + rng.normal(0.0, sigma_iod * IOD_PX, (t, 478, 3))


def test_feature_count_and_names():
    assert 24 <= len(FEATURE_NAMES) <= 80
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_NAMES[0] == f"{REGION_NAMES[0]}.dx" and FEATURE_NAMES[-1] == "head.rot12"


def test_rigid_motion_is_removed_exactly():
    t = 150
    static = _noisy_static(t, 0.004)
    moving = np.stack([rigid_transform(f, **p) for f, p in zip(static, _poses(t), strict=True)])
    valid = np.ones(t, bool)
    f_static, _ = extract_features(static.astype(np.float32), valid, FPS)
    f_moving, ok = extract_features(moving, valid, FPS)
    assert ok.all()
    # same face, same noise, only a per-frame similarity apart: identical expression features
    np.testing.assert_allclose(f_moving[:, DISP], f_static[:, DISP], atol=2e-4)
    np.testing.assert_allclose(f_moving[:, DIFF], f_static[:, DIFF], atol=2e-4)
    assert f_moving[:, ROT].max() > 0.1  # the head motion is reported, in radians


def test_rigid_motion_with_tracker_noise_stays_at_noise_level():
    t = 150
    sigma = 0.005  # landmark jitter, fraction of the inter-ocular distance
    rng = np.random.default_rng(1)
    poses = list(_poses(t))
    moving = np.stack([rigid_transform(_mesh(), **p) for p in poses]).astype(np.float64)
    scale = np.array([p["scale"] for p in poses])
    moving += rng.normal(0.0, 1.0, moving.shape) * (sigma * IOD_PX * scale)[:, None, None]
    valid = np.ones(t, bool)
    f_moving, _ = extract_features(moving.astype(np.float32), valid, FPS)
    f_static, _ = extract_features(_noisy_static(t, sigma, seed=2).astype(np.float32), valid, FPS)
    noise_level = np.abs(f_static[:, DISP]).max()
    assert np.abs(f_moving[:, DISP]).max() <= 1.5 * noise_level
    assert np.abs(f_moving[:, DISP]).max() < 4 * sigma
    assert f_moving[:, DIFF].max() <= 1.5 * f_static[:, DIFF].max()
    # without alignment the same motion would be huge: check the test data really moves
    assert np.abs(moving[:, 61, :2] - moving[0, 61, :2]).max() > IOD_PX


@pytest.mark.parametrize("region", REGION_NAMES)
def test_displacement_moves_only_its_region(region):
    t = 90
    shift = np.array([0.06, -0.04]) * IOD_PX
    frames = np.repeat(_mesh()[None], t, axis=0)
    frames[60:, list(REGIONS[region]), :2] += shift
    pose = dict(roll_deg=8.0, yaw_deg=12.0, scale=1.3, shift_px=(25.0, -10.0))
    frames = np.stack([rigid_transform(f, **pose) for f in frames])
    feats, ok = extract_features(frames, np.ones(t, bool), FPS)
    assert ok.all()
    r = REGION_NAMES.index(region)
    got = feats[75, 2 * r : 2 * r + 2]
    np.testing.assert_allclose(got, [0.06, -0.04], atol=0.01)
    others = np.delete(feats[:, DISP], [2 * r, 2 * r + 1], axis=1)
    assert np.abs(others).max() < 1e-4
    group = next(g for g, members in REGION_GROUPS.items() if region in members)
    g = GROUP_NAMES.index(group)
    diffs = feats[:, DIFF].reshape(t, 3, len(GROUP_NAMES))
    assert diffs[60:62, 0, g].min() > 0.02
    assert np.abs(np.delete(diffs, g, axis=2)).max() < 1e-4
    assert np.abs(diffs[:60]).max() < 1e-4 and np.abs(diffs[75:]).max() < 1e-4


def test_invalid_frames_give_zeros_and_recover():
    t = 100
    frames = _noisy_static(t, 0.003).astype(np.float32)
    frames[50:, list(REGIONS["mouth_corner_l"]), 0] += 0.1 * IOD_PX  # expression across the gap
    fe = FeatureExtractor(FPS)
    out = []
    for i in range(t):
        if 40 <= i < 45:
            out.append(fe.push(None))
        elif 45 <= i < 50:
            bad = frames[i].copy()
            bad[61] = np.nan
            out.append(fe.push(bad))
        else:
            out.append(fe.push(frames[i]))
    feats = np.stack([o[0] for o in out])
    valid = np.array([o[1] for o in out])
    assert not valid[40:50].any() and valid[:40].all() and valid[50:].all()
    assert not feats[40:50].any()
    r = REGION_NAMES.index("mouth_corner_l")
    assert feats[50:, 2 * r].min() > 0.08  # baseline kept across the gap
    diffs = feats[:, DIFF].reshape(t, 3, len(GROUP_NAMES))
    assert not diffs[50:52, 0].any()  # lag 2 needs frame t-2, which had no face
    assert diffs[52:, 0].any()
    # lag 12: frames 52-61 look back into the gap (40-49); 50-51 and 62+ see a face
    assert not diffs[52:62, 2].any() and diffs[50:52, 2].all() and diffs[62:, 2].all()


def test_no_face_at_start_and_reset():
    fe = FeatureExtractor(FPS)
    for _ in range(5):
        f, ok = fe.push(None)
        assert not ok and not f.any()
    mesh = _mesh().astype(np.float32)
    f, ok = fe.push(mesh)
    assert ok and np.abs(f).max() < 1e-6
    moved = mesh.copy()
    moved[list(REGIONS["chin"]), 1] += 0.2 * IOD_PX
    for _ in range(40):
        fe.push(mesh)
    assert fe.push(moved)[0][DISP].max() > 0.15
    fe.reset()
    assert fe.reference is None
    f, ok = fe.push(moved)  # new track: its first frame is its own neutral
    assert ok and np.abs(f).max() < 1e-6


def test_held_expression_not_absorbed_by_features():
    t = 30 * 14
    frames = _noisy_static(t, 0.003, seed=5).astype(np.float32)
    held = slice(45, 45 + 300)  # 10 s smile on both mouth corners
    frames[held, list(REGIONS["mouth_corner_r"]), 0] -= 0.08 * IOD_PX
    frames[held, list(REGIONS["mouth_corner_l"]), 0] += 0.08 * IOD_PX
    frames[held, list(REGIONS["mouth_corner_l"]) + list(REGIONS["mouth_corner_r"]), 1] -= 4.0
    feats, _ = extract_features(frames, np.ones(t, bool), FPS)
    r = REGION_NAMES.index("mouth_corner_l")
    assert feats[held, 2 * r].min() > 0.06
    assert abs(feats[330:345, 2 * r].mean() - feats[46:61, 2 * r].mean()) < 0.005
    assert np.abs(feats[-30:, DISP]).max() < 0.02


def test_fps_scales_lags():
    assert FeatureExtractor(30.0).lags == (2, 5, 12)
    assert FeatureExtractor(60.0).lags == (4, 10, 24)
    assert FeatureExtractor(15.0).lags == (1, 3, 6)
    assert FeatureExtractor(200.0).lags == (13, 33, 80)
    cfg = FeatureConfig(lags_frames_at_30fps=(3, 9), neutral=NeutralConfig(warmup_s=0.5))
    assert len(FeatureExtractor(30.0, cfg).names) == 2 * 17 + 2 * 10 + 2


def test_bad_input_raises_input_error():
    fe = FeatureExtractor(FPS)
    with pytest.raises(InputError):
        fe.push(np.zeros((468, 3), np.float32))
    with pytest.raises(InputError):
        fe.push_chunk(np.zeros((5, 478, 2), np.float32))
    with pytest.raises(InputError):
        extract_features(np.zeros((5, 478, 3), np.float32), np.ones(4, bool), FPS)
    with pytest.raises(InputError):
        FeatureExtractor(0.0)


def test_degenerate_and_empty_input():
    fe = FeatureExtractor(FPS)
    f, ok = fe.push(np.zeros((478, 3), np.float32))  # all points on one spot: no face
    assert not ok and not f.any() and fe.reference is None
    f, ok = fe.push_chunk(np.zeros((0, 478, 3), np.float32), np.zeros(0, bool))
    assert f.shape == (0, len(FEATURE_NAMES)) and ok.shape == (0,)
    f, ok = fe.push(_mesh().astype(np.float32))
    assert ok and fe.reference is not None
