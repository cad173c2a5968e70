"""Face geometry for the synthetic benchmark: neutral mesh, landmark groups, identity, camera.

The canonical neutral mesh is MediaPipe face mesh (478 points with iris refinement) measured on
``skimage.data.astronaut()`` by ``scripts/measure_neutral_mesh.py`` and frontalised. Canonical
units: inter-ocular distance (iris centre to iris centre) = 1, origin between the iris centres,
x to image-right (the subject's left), y down, z away from the camera (MediaPipe's sign).

A :class:`FaceIdentity` perturbs that mesh smoothly per subject; :func:`project` applies a head
pose (3-D rotation about a point behind the face, scale, translation) with a weak-perspective
(scaled orthographic) camera, giving pixel landmarks in the format of design.md (x, y in pixels,
z on the x scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "N_LANDMARKS",
    "IDX",
    "GROUPS",
    "neutral_mesh",
    "FaceIdentity",
    "sample_identity",
    "rotation_matrices",
    "project",
    "unproject",
    "HEAD_PIVOT",
]

N_LANDMARKS = 478
_ASSET = Path(__file__).resolve().parent / "assets" / "neutral_mesh.npy"

# Canonical MediaPipe indices (R/L = the subject's right/left; the subject's right is image-left,
# x < 0 in canonical units). Checked geometrically in tests/test_synth_face.py.
IDX: dict[str, int] = {
    "mouth_corner_r": 61, "mouth_corner_l": 291,
    "upper_lip_outer": 0, "upper_lip_inner": 13,
    "lower_lip_inner": 14, "lower_lip_outer": 17,
    "chin": 152, "forehead": 10, "nose_tip": 1,
    "inner_brow_r": 107, "inner_brow_l": 336,
    "outer_brow_r": 70, "outer_brow_l": 300,
    "mid_brow_r": 105, "mid_brow_l": 334,
    "upper_lid_r": 159, "upper_lid_l": 386,
    "lower_lid_r": 145, "lower_lid_l": 374,
    "eye_outer_r": 33, "eye_inner_r": 133, "eye_inner_l": 362, "eye_outer_l": 263,
    "nose_wing_r": 129, "nose_wing_l": 358,
    "cheek_r": 50, "cheek_l": 280,
    "iris_r": 468, "iris_l": 473,
    "face_side_r": 234, "face_side_l": 454,
}

# Landmark groups (MediaPipe topology: the lip and eye contours of the face-mesh model).
GROUPS: dict[str, tuple[int, ...]] = {
    "lip_upper_outer": (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291),
    "lip_lower_outer": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291),
    "lip_upper_inner": (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308),
    "lip_lower_inner": (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308),
    "eye_upper_r": (33, 246, 161, 160, 159, 158, 157, 173, 133),
    "eye_lower_r": (33, 7, 163, 144, 145, 153, 154, 155, 133),
    "eye_upper_l": (263, 466, 388, 387, 386, 385, 384, 398, 362),
    "eye_lower_l": (263, 249, 390, 373, 374, 380, 381, 382, 362),
    "brow_r": (46, 52, 53, 55, 63, 65, 66, 70, 105, 107),
    "brow_l": (276, 282, 283, 285, 293, 295, 296, 300, 334, 336),
    "iris_r": (468, 469, 470, 471, 472),
    "iris_l": (473, 474, 475, 476, 477),
}

# Head rotation pivot in canonical units: roughly the centre of the skull behind the eyes.
HEAD_PIVOT = np.array([0.0, 0.35, 1.2], dtype=np.float64)


@lru_cache(maxsize=1)
def _load_mesh() -> np.ndarray:
    mesh = np.load(_ASSET)
    if mesh.shape != (N_LANDMARKS, 3):
        raise RuntimeError(f"{_ASSET} has shape {mesh.shape}, expected (478, 3)")
    mesh = mesh.astype(np.float64)
    mesh.setflags(write=False)
    return mesh


def neutral_mesh() -> np.ndarray:
    """The canonical neutral mesh, (478, 3) float64 in IOD units (a read-only array)."""
    return _load_mesh()


@dataclass(frozen=True)
class FaceIdentity:
    """One synthetic subject: a smoothly perturbed neutral mesh plus per-subject gains.

    mesh: (478, 3) float64 neutral shape in IOD units (canonical frame).
    face_width_px: nominal face width (landmark 234 to 454) in pixels.
    au_gain: per-subject multiplier of action-unit magnitudes (expressiveness).
    """

    mesh: np.ndarray
    face_width_px: float
    au_gain: float


def _smooth_field(rng: np.random.Generator, pts: np.ndarray, n: int, sigma: float,
                  amp: float) -> np.ndarray:
    """A smooth random displacement field (P, 3): n Gaussian bumps of width sigma, amplitude amp."""
    centres = pts[rng.integers(0, len(pts), size=n)]
    vecs = rng.normal(0.0, amp, size=(n, 3))
    vecs[:, 2] *= 0.5
    d2 = ((pts[:, None, :2] - centres[None, :, :2]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    return w @ vecs


def sample_identity(rng: np.random.Generator, face_width_px: tuple[float, float],
                    relax_mouth: bool = True) -> FaceIdentity:
    """Draw a subject: global proportions, smooth local shape changes and mouth posture.

    The measured face smiles slightly with parted lips; ``relax_mouth`` closes the lips and lowers
    the mouth corners by a random fraction so that subjects cover closed, relaxed mouths too.
    """
    base = neutral_mesh().copy()
    # global proportions: face aspect, eye spacing is kept (IOD = 1 defines the unit)
    sx = rng.uniform(0.92, 1.08)
    sy = rng.uniform(0.9, 1.1)
    sz = rng.uniform(0.85, 1.15)
    m = base * np.array([sx, sy, sz])
    # lower-face length varies independently of the upper face
    below = np.clip(m[:, 1] - 0.3, 0.0, None)
    m[:, 1] += below * rng.uniform(-0.08, 0.08)
    # smooth low-frequency asymmetric perturbations
    m += _smooth_field(rng, m, n=6, sigma=0.45, amp=0.035)
    if relax_mouth:
        from training.synth_aus import au_basis

        basis = au_basis()
        m += rng.uniform(0.0, 1.0) * basis["lips_close"]
        m += rng.uniform(0.0, 0.6) * basis["smile_relax"]
    # re-normalise: iris centres define the unit and the origin
    iod = np.linalg.norm(m[473, :2] - m[468, :2])
    m = (m - 0.5 * (m[468] + m[473])) / iod
    lo, hi = face_width_px
    width = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    gain = float(rng.uniform(0.8, 1.2))
    m.setflags(write=False)
    return FaceIdentity(mesh=m, face_width_px=width, au_gain=gain)


def rotation_matrices(yaw_deg: np.ndarray, pitch_deg: np.ndarray,
                      roll_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices (T, 3, 3) for angles (T,) in degrees: R = Rz(roll) Ry(yaw) Rx(pitch).

    Positive yaw turns the face towards image-right, positive pitch tilts the chin up (looking up),
    positive roll rotates clockwise in the image.
    """
    y, p, r = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (yaw_deg, pitch_deg, roll_deg))
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    one, zero = np.ones_like(y), np.zeros_like(y)
    rx = np.stack([np.stack([one, zero, zero], -1),
                   np.stack([zero, cp, sp], -1),
                   np.stack([zero, -sp, cp], -1)], -2)
    ry = np.stack([np.stack([cy, zero, -sy], -1),
                   np.stack([zero, one, zero], -1),
                   np.stack([sy, zero, cy], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1),
                   np.stack([sr, cr, zero], -1),
                   np.stack([zero, zero, one], -1)], -2)
    return rz @ ry @ rx


def project(shapes: np.ndarray, rot: np.ndarray, scale_px: np.ndarray,
            centre_px: np.ndarray) -> np.ndarray:
    """Pose and project canonical shapes to pixels with a weak-perspective camera.

    shapes: (T, 478, 3) canonical units; rot: (T, 3, 3); scale_px: (T,) pixels per IOD unit;
    centre_px: (T, 2) image position of the head pivot. Returns (T, 478, 3) pixels in the dtype
    of ``shapes``
    (x, y; z on the x scale, 0 at the canonical face plane).
    """
    dt = shapes.dtype
    rel = shapes - HEAD_PIVOT.astype(dt)
    # fold the scale into the rotation, then one batched matmul: (T, 478, 3) @ (T, 3, 3)
    srot = (rot * scale_px[:, None, None]).astype(dt)
    out = np.matmul(rel, srot.transpose(0, 2, 1))
    shift = np.stack([centre_px[:, 0], centre_px[:, 1], scale_px * HEAD_PIVOT[2]], axis=1)
    out += shift[:, None, :].astype(dt)  # depth is relative to the face plane, as in MediaPipe
    return out


def unproject(px: np.ndarray, rot: np.ndarray, scale_px: np.ndarray,
              centre_px: np.ndarray) -> np.ndarray:
    """Inverse of :func:`project` for a known pose: (T, 478, 3) pixels -> canonical units."""
    shift = np.stack([centre_px[:, 0], centre_px[:, 1], scale_px * HEAD_PIVOT[2]], axis=1)
    rel = (px.astype(np.float64) - shift[:, None, :]) / scale_px[:, None, None]
    return np.matmul(rel, rot) + HEAD_PIVOT
