"""Neutral mesh, landmark anchors and action-unit fields of the synthetic generator."""

from __future__ import annotations

import numpy as np
import pytest

from training.synth_aus import AU_NAMES, au_basis, au_fields, mirror_index
from training.synth_face import GROUPS, IDX, neutral_mesh, project, rotation_matrices

REQUIRED_AUS = ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14",
                "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU43"]


def test_neutral_mesh_is_frontal_unit_iod():
    m = neutral_mesh()
    assert m.shape == (478, 3) and np.isfinite(m).all()
    iod = np.linalg.norm(m[473, :2] - m[468, :2])
    assert iod == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(0.5 * (m[468] + m[473]), 0.0, atol=1e-5)
    # frontal: eyes level, midline vertical
    assert abs(m[468, 1] - m[473, 1]) < 0.02
    assert abs(m[10, 0] - m[152, 0]) < 0.05


def test_anchor_indices_are_where_their_names_say():
    m = neutral_mesh()
    x, y = m[:, 0], m[:, 1]
    for name, i in IDX.items():  # the subject's right is image-left (x < 0)
        if name.endswith("_r"):
            assert x[i] < -0.1, name
        if name.endswith("_l"):
            assert x[i] > 0.1, name
    # vertical order, top to bottom
    order = ["forehead", "mid_brow_r", "upper_lid_r", "iris_r", "lower_lid_r", "nose_tip",
             "upper_lip_outer", "upper_lip_inner", "lower_lip_inner", "lower_lip_outer", "chin"]
    ys = [y[IDX[n]] for n in order]
    assert ys == sorted(ys)
    assert y[IDX["upper_lid_l"]] < y[IDX["iris_l"]] < y[IDX["lower_lid_l"]]
    assert y[IDX["inner_brow_r"]] < y[IDX["upper_lid_r"]] and y[IDX["outer_brow_l"]] < y[386]
    # eye corners: outer corners farther from the midline than inner ones, iris between
    assert x[33] < x[468] < x[133] < 0 < x[362] < x[473] < x[263]
    # mouth corners lateral to the lip midline, nose wings and cheeks lateral to the nose
    assert x[61] < x[0] < x[291] and abs(y[61] - y[13]) < 0.15
    assert x[50] < x[129] < x[1] < x[358] < x[280]
    for a, b in [(61, 291), (33, 263), (107, 336), (70, 300), (159, 386), (129, 358)]:
        assert mirror_index(a) == b and mirror_index(b) == a


def test_groups_are_lip_and_eye_contours():
    m = neutral_mesh()
    up = m[list(GROUPS["lip_upper_inner"][1:-1]), 1].mean()
    lo = m[list(GROUPS["lip_lower_inner"][1:-1]), 1].mean()
    assert up < lo
    for s in ("r", "l"):
        assert m[list(GROUPS[f"eye_upper_{s}"][1:-1]), 1].mean() < \
            m[list(GROUPS[f"eye_lower_{s}"][1:-1]), 1].mean()


def test_all_required_aus_exist_and_halves_sum():
    b = au_basis()
    for au in REQUIRED_AUS:
        assert au in AU_NAMES
        assert np.allclose(b[f"{au}_l"] + b[f"{au}_r"], b[au])
        assert np.linalg.norm(b[au], axis=1).max() > 0.02, au


@pytest.mark.parametrize("au,idx,dx_sign,dy_sign,lo,hi", [
    ("AU12", 291, +1, -1, 0.10, 0.20),   # lip corner up and out
    ("AU12", 61, -1, -1, 0.10, 0.20),
    ("AU1", 107, 0, -1, 0.07, 0.13),     # inner brow up
    ("AU2", 70, 0, -1, 0.07, 0.13),      # outer brow up
    ("AU4", 107, +1, +1, 0.05, 0.12),    # right inner brow down and towards the midline
    ("AU15", 61, 0, +1, 0.05, 0.10),     # corner down
    ("AU20", 291, +1, 0, 0.06, 0.12),    # corner out
    ("AU26", 152, 0, +1, 0.12, 0.30),    # chin down
    ("AU25", 14, 0, +1, 0.04, 0.10),     # lower lip down
    ("AU17", 17, 0, -1, 0.04, 0.10),     # lower lip pushed up
    ("AU9", 358, 0, -1, 0.04, 0.08),     # nose wing up
    ("AU10", 0, 0, -1, 0.04, 0.09),      # upper lip up
    ("AU5", 386, 0, -1, 0.03, 0.06),     # upper lid up
    ("AU7", 374, 0, -1, 0.02, 0.06),     # lower lid up
    ("AU6", 280, 0, -1, 0.03, 0.08),     # cheek up
])
def test_au_directions_and_magnitudes(au, idx, dx_sign, dy_sign, lo, hi):
    d = au_fields()[au][idx]
    mag = np.hypot(d[0], d[1])
    assert lo <= mag <= hi, (au, idx, d)
    if dx_sign:
        assert np.sign(d[0]) == dx_sign, (au, d)
    if dy_sign:
        assert np.sign(d[1]) == dy_sign, (au, d)


def test_aus_stay_in_their_region():
    f, m = au_fields(), neutral_mesh()
    mouth = m[:, 1] > 0.7
    brows = m[:, 1] < -0.1
    for au in ("AU1", "AU2", "AU4"):
        assert np.abs(f[au][mouth]).max() < 1e-3, au
    for au in ("AU12", "AU15", "AU20", "AU25", "AU26", "AU17"):
        assert np.abs(f[au][brows]).max() < 1e-3, au
    assert np.abs(f["AU26"][[13, 0]]).max() < 0.01  # the upper lip does not move with the jaw


def test_au43_closes_the_eyes():
    m, f = neutral_mesh(), au_fields()["AU43"]
    for up, lo in [(159, 145), (386, 374)]:
        gap0 = m[lo, 1] - m[up, 1]
        gap1 = (m[lo, 1] + f[lo, 1]) - (m[up, 1] + f[up, 1])
        assert gap0 > 0.1 and abs(gap1) < 0.1 * gap0


def test_projection_rotates_and_scales():
    m = neutral_mesh()[None].repeat(2, 0)
    rot = rotation_matrices(np.array([0.0, 20.0]), np.zeros(2), np.zeros(2))
    px = project(m, rot, np.array([100.0, 100.0]), np.array([[320.0, 180.0]] * 2))
    iod0 = np.linalg.norm(px[0, 473, :2] - px[0, 468, :2])
    iod1 = np.linalg.norm(px[1, 473, :2] - px[1, 468, :2])
    assert iod0 == pytest.approx(100.0, rel=1e-6)
    assert iod1 == pytest.approx(100.0 * np.cos(np.deg2rad(20)), rel=0.02)  # foreshortened
    assert px[1, 1, 0] > px[0, 1, 0]  # positive yaw turns the nose to image-right
    r = rotation_matrices(np.array([7.0]), np.array([-5.0]), np.array([12.0]))[0]
    assert np.allclose(r @ r.T, np.eye(3))


@pytest.mark.mediapipe
def test_committed_mesh_matches_a_fresh_measurement():
    pytest.importorskip("mediapipe")
    skdata = pytest.importorskip("skimage.data")
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "measure_neutral_mesh.py"
    spec = importlib.util.spec_from_file_location("measure_neutral_mesh", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = mod.frontalise(mod.measure(skdata.astronaut()))
    assert np.abs(fresh - neutral_mesh()).max() < 1e-3
