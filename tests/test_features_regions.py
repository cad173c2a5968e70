"""Landmark index sets and the 3-D similarity alignment."""

import numpy as np
import pytest

from stream.align import align_landmarks, fit_similarity, make_reference
from stream.feat_mesh import rigid_transform, synthetic_neutral_mesh
from stream.regions import (
    GROUP_NAMES,
    N_LANDMARKS,
    REGION_GROUPS,
    REGION_NAMES,
    REGIONS,
    STABLE,
    region_matrix,
)


def test_index_sets_are_sane():
    region_points = [p for idx in REGIONS.values() for p in idx]
    assert all(0 <= p < N_LANDMARKS for p in region_points + list(STABLE))
    assert len(set(STABLE)) == len(STABLE) >= 10
    assert not set(STABLE) & set(region_points)  # stable points never carry expression
    assert len(set(region_points)) == len(region_points)  # regions do not overlap
    assert sorted(r for g in GROUP_NAMES for r in REGION_GROUPS[g]) == sorted(REGION_NAMES)
    m = region_matrix(tuple(dict.fromkeys(region_points)))
    np.testing.assert_allclose(m.sum(axis=1), 1.0)


def test_reference_is_centred_unit_iod_and_level():
    mesh = rigid_transform(synthetic_neutral_mesh(iod_px=90.0), roll_deg=15.0, yaw_deg=10.0)
    ref = make_reference(mesh)
    pos = {p: i for i, p in enumerate(STABLE)}
    eye_r = 0.5 * (ref[pos[33]] + ref[pos[133]])
    eye_l = 0.5 * (ref[pos[362]] + ref[pos[263]])
    np.testing.assert_allclose(eye_r, [-0.5, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(eye_l, [0.5, 0.0, 0.0], atol=1e-9)
    assert ref[pos[10], 1] < 0 < ref[pos[4], 1]  # forehead above, nose tip below the eyes


def test_fit_recovers_known_similarity_and_handles_bad_frames():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(len(STABLE), 3))
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    rot *= np.sign(np.linalg.det(rot))
    src = np.stack([(ref - 0.3) @ rot.T * 2.5 + 7.0, ref, np.zeros_like(ref), ref])
    src[3, 4] = np.nan
    sim = fit_similarity(src, ref)
    assert sim.ok.tolist() == [True, True, False, False]
    np.testing.assert_allclose(sim.scale[:2], [0.4, 1.0], rtol=1e-9)
    np.testing.assert_allclose(sim.rotation[0], rot.T, atol=1e-9)
    np.testing.assert_allclose(sim.residual_rms[:2], 0.0, atol=1e-9)


def test_fit_never_reflects():
    ref = synthetic_neutral_mesh()[list(STABLE)].astype(np.float64)
    mirrored = ref * np.array([-1.0, 1.0, 1.0])
    sim = fit_similarity(mirrored[None], ref)
    np.testing.assert_allclose(np.linalg.det(sim.rotation), 1.0)


def test_align_landmarks_removes_rigid_motion():
    mesh = synthetic_neutral_mesh()
    ref = make_reference(mesh)
    moved = rigid_transform(mesh, roll_deg=-20, yaw_deg=25, pitch_deg=10, scale=0.5)
    a0, _ = align_landmarks(mesh, ref)
    a1, sim = align_landmarks(moved, ref)
    np.testing.assert_allclose(a0, a1, atol=1e-4)
    assert np.isclose(np.linalg.norm(a0[133, :2] - a0[33, :2]), 0.5, atol=0.01)  # IOD units


def _mediapipe_astronaut() -> np.ndarray:
    mp = pytest.importorskip("mediapipe")
    data = pytest.importorskip("skimage.data")
    img = data.astronaut()
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=1
    ) as fm:
        res = fm.process(img)
    assert res.multi_face_landmarks, "MediaPipe found no face on the astronaut"
    h, w = img.shape[:2]
    return np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark])


@pytest.mark.mediapipe
def test_indices_match_mediapipe_geometry():
    lm = _mediapipe_astronaut()
    assert lm.shape == (N_LANDMARKS, 3)
    c = {name: lm[list(idx), :2].mean(axis=0) for name, idx in REGIONS.items()}
    assert lm[61, 0] < lm[291, 0]  # subject's right corner on the image left
    for side in ("r", "l"):
        assert c[f"brow_inner_{side}"][1] < c[f"upper_lid_{side}"][1] < c[f"lower_lid_{side}"][1]
        assert c[f"brow_outer_{side}"][1] < c[f"upper_lid_{side}"][1]
        assert c[f"lower_lid_{side}"][1] < c[f"cheek_{side}"][1] < c[f"mouth_corner_{side}"][1]
        assert abs(c[f"nose_wing_{side}"][1] - lm[1, 1]) < 0.25 * (lm[152, 1] - lm[1, 1])
    for base in ("brow_inner", "brow_outer", "upper_lid", "nose_wing", "cheek", "mouth_corner"):
        assert c[f"{base}_r"][0] < c[f"{base}_l"][0]
    # outer brow is lateral to the inner brow on both sides
    assert (
        c["brow_outer_r"][0] < c["brow_inner_r"][0] and c["brow_inner_l"][0] < c["brow_outer_l"][0]
    )
    assert c["upper_lip"][1] < c["lower_lip"][1] < c["chin"][1]
    assert lm[list(REGIONS["chin"]), 1].max() >= lm[:468, 1].max() - 1.0
    iod = np.linalg.norm(lm[468, :2] - lm[473, :2])
    assert 0.8 < np.linalg.norm(lm[133, :2] - lm[362, :2]) / iod * 2 < 1.4


@pytest.mark.mediapipe
def test_real_tracker_rotation_and_scale_are_removed():
    """MediaPipe on the astronaut and on a rotated, shrunk copy: features stay at jitter level."""
    cv2 = pytest.importorskip("cv2")
    mp = pytest.importorskip("mediapipe")
    data = pytest.importorskip("skimage.data")
    from stream.features import extract_features

    img = data.astronaut()
    h, w = img.shape[:2]
    frames = []
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=1
    ) as fm:
        for angle, scale in ((0.0, 1.0), (15.0, 0.8), (-12.0, 1.2)):
            m = cv2.getRotationMatrix2D((w / 2, h / 3), angle, scale)
            warped = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            res = fm.process(warped)
            assert res.multi_face_landmarks
            pts = res.multi_face_landmarks[0].landmark
            frames.append([[p.x * w, p.y * h, p.z * w] for p in pts])
    lm = np.asarray(frames, dtype=np.float32)
    raw = np.abs(lm[1:, 61, :2] - lm[0, 61, :2]).max() / np.linalg.norm(lm[0, 468] - lm[0, 473])
    feats, ok = extract_features(lm, np.ones(3, bool), 30.0)
    assert ok.all() and raw > 0.2  # the mouth corner moved a lot in the image
    assert np.abs(feats[1:, :34]).max() < 0.05  # but not relative to the aligned face
