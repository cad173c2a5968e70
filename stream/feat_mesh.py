"""A plausible synthetic 478-point face mesh for tests and benchmarks (no MediaPipe needed).

Not a measured face: every point that ``stream.regions`` names sits near its anatomical place
(eyes, brows, nose, mouth, chin, forehead, face contour), the other points are scattered over a
face-shaped ellipse, and depth follows a smooth face-like surface (protruding nose, receding
sides). Good enough for the geometry the features use: alignment, region centroids, rigid motion.
"""

from __future__ import annotations

import numpy as np

from stream.regions import N_LANDMARKS, REGIONS

__all__ = ["synthetic_neutral_mesh", "rigid_transform"]

# Anatomical anchors in IOD units: origin between the eye centres, +x subject's left, +y down.
# fmt: off
_POINTS = {
    33: (-0.75, 0.0), 133: (-0.25, 0.0), 362: (0.25, 0.0), 263: (0.75, 0.0),
    168: (0.0, -0.05), 6: (0.0, 0.1), 197: (0.0, 0.22), 195: (0.0, 0.32), 5: (0.0, 0.42),
    4: (0.0, 0.5), 1: (0.0, 0.53),
    10: (0.0, -0.8), 151: (0.0, -0.6), 109: (-0.25, -0.78), 338: (0.25, -0.78),
    127: (-1.05, 0.0), 234: (-1.05, 0.2), 93: (-1.0, 0.4),
    356: (1.05, 0.0), 454: (1.05, 0.2), 323: (1.0, 0.4),
    468: (-0.5, 0.0), 473: (0.5, 0.0),
}
_REGION_CENTRES = {
    "brow_inner": (0.2, -0.3), "brow_outer": (0.65, -0.32), "upper_lid": (0.5, -0.07),
    "lower_lid": (0.5, 0.06), "nose_wing": (0.22, 0.52), "cheek": (0.6, 0.45),
    "mouth_corner": (0.38, 0.85), "upper_lip": (0.0, 0.8), "lower_lip": (0.0, 0.95),
    "chin": (0.0, 1.3),
}
# fmt: on


def _depth(xy: np.ndarray) -> np.ndarray:
    x, y = xy[:, 0], xy[:, 1]
    nose = np.exp(-(x**2) / (2 * 0.12**2) - (y - 0.35) ** 2 / (2 * 0.3**2))
    return 0.45 * x**2 + 0.12 * (y - 0.3) ** 2 - 0.35 * nose


def synthetic_neutral_mesh(
    iod_px: float = 60.0, centre_px: tuple[float, float] = (320.0, 240.0), seed: int = 0
) -> np.ndarray:
    """A neutral frontal face mesh: (478, 3) float32 pixels (x, y, z on the x scale).

    iod_px: inter-ocular distance in pixels; centre_px: image position of the eye midpoint;
    seed: the scatter of points that no region uses (region points are deterministic).
    """
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, 2 * np.pi, N_LANDMARKS)
    rad = np.sqrt(rng.uniform(0, 1, N_LANDMARKS))
    xy = np.stack([1.0 * rad * np.cos(theta), 0.3 + 1.2 * rad * np.sin(theta)], axis=1)
    for name, idx in REGIONS.items():
        base = name[:-2] if name.endswith(("_r", "_l")) else name
        cx, cy = _REGION_CENTRES[base]
        cx = -cx if name.endswith("_r") else cx
        n = len(idx)
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + 0.3
        spread = (0.2, 0.03) if "lid" in name or "lip" in name else (0.06, 0.04)
        xy[list(idx), 0] = cx + spread[0] * np.cos(ang)
        xy[list(idx), 1] = cy + spread[1] * np.sin(ang)
    for p, (x, y) in _POINTS.items():
        xy[p] = (x, y)
    out = np.empty((N_LANDMARKS, 3), dtype=np.float64)
    out[:, :2] = xy * iod_px + np.asarray(centre_px)
    out[:, 2] = _depth(xy) * iod_px
    return out.astype(np.float32)


def rigid_transform(
    mesh: np.ndarray,
    roll_deg: float = 0.0,
    yaw_deg: float = 0.0,
    pitch_deg: float = 0.0,
    scale: float = 1.0,
    shift_px: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Rotate (about the mesh centroid), scale and shift a mesh as a weak-perspective camera sees it.

    mesh: (..., 478, 3) pixels. Returns the same shape, float32, with z rotated along (as
    MediaPipe reports it) so the result is exactly a rigid copy of the input in 3-D.
    """
    r, y, p = np.deg2rad([roll_deg, yaw_deg, pitch_deg])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rot = rz @ ry @ rx
    m = np.asarray(mesh, dtype=np.float64)
    c = m.mean(axis=-2, keepdims=True)
    out = (m - c) @ rot.T * scale + c
    out[..., 0] += shift_px[0]
    out[..., 1] += shift_px[1]
    return out.astype(np.float32)
