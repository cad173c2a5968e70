"""Head-motion removal: a 3-D similarity fit (Umeyama / Procrustes) of stable landmarks.

Every frame's stable points (``stream.regions.STABLE``) are mapped onto a per-track reference
shape by the least-squares similarity ``y = s R x + t`` (scale s, rotation R with det +1,
translation t; Umeyama 1991, implemented here with one batched 3x3 SVD). Applying that transform
to all landmarks gives aligned landmarks in which rigid head motion (translation, in-plane roll,
out-of-plane yaw and pitch, distance to the camera) is removed and only non-rigid (expression)
motion remains.

Units: the reference is built by :func:`make_reference`, which centres the stable points on the
midpoint between the eye centres, rotates them so the 3-D eye line is the +x axis (removing roll
and yaw of the reference frame) and scales them so the inter-ocular distance (IOD, distance
between the eye centres, each the mean of its two eye corners) is exactly 1. Aligned coordinates
are therefore in units of "fraction of the inter-ocular distance": a mouth corner moving by 0.1 has
moved by a tenth of the distance between the eyes, whatever the face size in pixels. Axes: +x
towards the subject's left (image right), +y down, +z away from the camera (MediaPipe's
convention, z on the x scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.regions import EYE_INNER_L, EYE_INNER_R, EYE_OUTER_L, EYE_OUTER_R, STABLE

__all__ = [
    "Similarity",
    "make_reference",
    "fit_similarity",
    "apply_similarity",
    "align_landmarks",
]

_EPS = 1e-12


@dataclass(frozen=True)
class Similarity:
    """A batch of similarity transforms ``y = scale * rotation @ x + translation``.

    scale: (T,) float64; rotation: (T, 3, 3) float64, proper rotations; translation: (T, 3)
    float64 in reference units; residual_rms: (T,) float64, root-mean-square distance of the
    fitted stable points to the reference after alignment (reference units, i.e. IOD fractions);
    ok: (T,) bool, false where the source points were degenerate (all equal or non-finite).
    """

    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    residual_rms: np.ndarray
    ok: np.ndarray


def make_reference(landmarks: np.ndarray, stable: tuple[int, ...] = STABLE) -> np.ndarray:
    """Canonical reference shape of the stable points from one frame.

    landmarks: (478, 3) float, pixels (x, y, z on the x scale) of one valid frame.
    Returns (len(stable), 3) float64: the stable points centred on the eye midpoint, rotated so the
    3-D line from the right to the left eye centre is +x and image-down is +y (as far as it is
    orthogonal to x), scaled so the inter-ocular distance is 1.
    Raises ValueError on non-finite or degenerate input.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 3 or not np.isfinite(lm[list(stable)]).all():
        raise ValueError("make_reference needs one frame of finite (478, 3) landmarks")
    eye_r = 0.5 * (lm[EYE_OUTER_R] + lm[EYE_INNER_R])
    eye_l = 0.5 * (lm[EYE_OUTER_L] + lm[EYE_INNER_L])
    ex = eye_l - eye_r
    iod = float(np.linalg.norm(ex))
    if iod < 1e-6:
        raise ValueError("make_reference: eye centres coincide")
    ex /= iod
    down = np.array([0.0, 1.0, 0.0]) - ex[1] * ex
    n = float(np.linalg.norm(down))
    if n < 1e-6:  # eye line vertical: fall back to camera z as the third axis
        down = np.cross(np.array([0.0, 0.0, 1.0]), ex)
        n = float(np.linalg.norm(down))
    ey = down / n
    ez = np.cross(ex, ey)
    basis = np.stack([ex, ey, ez])  # rows: new axes in camera coordinates
    centre = 0.5 * (eye_r + eye_l)
    return (lm[list(stable)] - centre) @ basis.T / iod


def _det3(m: np.ndarray) -> np.ndarray:
    """Determinants of (T, 3, 3) matrices (explicit formula: cheaper than LAPACK for 3x3)."""
    return (
        m[:, 0, 0] * (m[:, 1, 1] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 1])
        - m[:, 0, 1] * (m[:, 1, 0] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 0])
        + m[:, 0, 2] * (m[:, 1, 0] * m[:, 2, 1] - m[:, 1, 1] * m[:, 2, 0])
    )


def fit_similarity(src: np.ndarray, dst: np.ndarray, *, residual: bool = True) -> Similarity:
    """Least-squares similarity from each frame's points onto a fixed reference (Umeyama).

    src: (T, P, 3) float, the stable points of T frames (pixels); dst: (P, 3) float, the reference.
    Returns a :class:`Similarity` of length T mapping src[t] onto dst. Frames whose points are
    non-finite or collapse to one point get ok=False and scale 0. With residual=False the
    residual_rms field is left NaN (saves time on the per-frame path).
    """
    x = np.asarray(src, dtype=np.float64)
    y = np.asarray(dst, dtype=np.float64)
    inv_p = 1.0 / x.shape[1]
    finite = np.isfinite(x).all(axis=(1, 2))
    if not finite.all():
        x = np.where(finite[:, None, None], x, 0.0)
    mx = x.sum(axis=1) * inv_p
    my = y.sum(axis=0) * inv_p
    xc = x - mx[:, None, :]
    yc = y - my
    var_x = np.einsum("tpi,tpi->t", xc, xc) * inv_p
    ok = finite & (var_x > _EPS)
    cov = np.matmul(yc.T, xc) * inv_p  # (T, 3, 3) = 1/P sum_p yc_p xc_p^T
    u, sv, vt = np.linalg.svd(cov)
    # d = -1 where the best orthogonal map is a reflection: flip the weakest axis instead
    d = np.where(_det3(u) * _det3(vt) < 0.0, -1.0, 1.0)
    u[:, :, 2] *= d[:, None]
    rot = np.matmul(u, vt)
    sv[:, 2] *= d
    scale = np.where(ok, sv.sum(axis=1) / np.where(ok, var_x, 1.0), 0.0)
    trans = my - scale[:, None] * np.einsum("tij,tj->ti", rot, mx)
    resid = np.full(x.shape[0], np.nan)
    if residual:
        fitted = scale[:, None, None] * np.matmul(x, np.swapaxes(rot, 1, 2)) + trans[:, None, :]
        resid = np.sqrt(np.mean(np.sum((fitted - y) ** 2, axis=2), axis=1))
        resid = np.where(ok, resid, np.nan)
    return Similarity(scale=scale, rotation=rot, translation=trans, residual_rms=resid, ok=ok)


def apply_similarity(points: np.ndarray, sim: Similarity) -> np.ndarray:
    """Apply per-frame similarities. points: (T, N, 3) float. Returns (T, N, 3) float64."""
    p = np.asarray(points, dtype=np.float64)
    out = np.matmul(p, np.swapaxes(sim.rotation, 1, 2))
    out *= sim.scale[:, None, None]
    out += sim.translation[:, None, :]
    return out


def align_landmarks(
    landmarks: np.ndarray, reference: np.ndarray, stable: tuple[int, ...] = STABLE
) -> tuple[np.ndarray, Similarity]:
    """Align whole landmark frames to a reference built by :func:`make_reference`.

    landmarks: (T, 478, 3) or (478, 3) float pixels; reference: (len(stable), 3).
    Returns (aligned, similarity): aligned has the input's shape, float64, in IOD units of the
    reference (NaN where the fit failed); similarity has length T (1 for a single frame).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    single = lm.ndim == 2
    if single:
        lm = lm[None]
    sim = fit_similarity(lm[:, list(stable)], reference)
    aligned = apply_similarity(lm, sim)
    aligned[~sim.ok] = np.nan
    return (aligned[0] if single else aligned), sim
