"""Expression kinds for warped clips: which MediaPipe landmarks move, how far, which stay.

Each :class:`EventKind` is a set of landmark groups, each with a displacement at full
intensity in inter-ocular distances (IOD; image axes, y down; the face is frontal with the
subject's right side on the image left), a Gaussian falloff width, and landmarks pinned at zero
so that, for example, the eyes stay put while the brows rise. ``landmark_displacements`` turns a
kind into per-landmark pixel motions on a measured mesh; ``training.warpclip`` interpolates them
into a dense field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Group", "EventKind", "EVENT_KINDS", "landmark_displacements", "REGION_LANDMARKS"]

# MediaPipe face-mesh indices (subject's right = image left)
R_BROW = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
L_BROW = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
R_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
R_LOWER_LID = (33, 7, 163, 144, 145, 153, 154, 155, 133)
L_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
L_LOWER_LID = (263, 249, 390, 373, 374, 380, 381, 382, 362)
IRIS = tuple(range(468, 478))
UPPER_LIP = (185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
CHIN = (152, 175, 199, 200, 18, 148, 377, 176, 400)
NOSE = (1, 2, 4, 5, 94, 98, 327, 168, 6, 197, 195)
EYES = R_UPPER_LID + R_LOWER_LID + L_UPPER_LID + L_LOWER_LID + IRIS

# landmarks that show each region's motion (for tests and ground-truth checks)
REGION_LANDMARKS: dict[str, tuple[int, ...]] = {
    "mouth": (61, 291, 78, 308) + LOWER_LIP,
    "brows": R_BROW + L_BROW,
    "eyes": R_UPPER_LID + L_UPPER_LID,
}


@dataclass(frozen=True)
class Group:
    """Landmarks moved together.

    ids: source landmarks (moved by the full displacement).
    dx_iod, dy_iod: displacement at intensity 1, in IOD.
    lid_close: if > 0, dy is instead this fraction of the measured lid opening of the eye whose
        upper lid ``ids`` are (eyelid closure scales with the eye, not the face).
    sigma_iod: Gaussian falloff to other landmarks, in IOD.
    """

    ids: tuple[int, ...]
    dx_iod: float = 0.0
    dy_iod: float = 0.0
    lid_close: float = 0.0
    sigma_iod: float = 0.15


@dataclass(frozen=True)
class EventKind:
    """A named expression: its landmark groups, pinned landmarks and reported region."""

    name: str
    region: str
    groups: tuple[Group, ...]
    pinned: tuple[int, ...] = ()


_BROW_RAISE = (
    Group(R_BROW, dy_iod=-0.11, sigma_iod=0.15),
    Group(L_BROW, dy_iod=-0.11, sigma_iod=0.15),
)
_JAW_DROP = (
    Group(LOWER_LIP + CHIN, dy_iod=0.12, sigma_iod=0.22),
    Group((61, 78, 291, 308), dy_iod=0.05, sigma_iod=0.05),
)

EVENT_KINDS: dict[str, EventKind] = {
    k.name: k
    for k in (
        EventKind(
            "smile",
            "mouth",
            (
                Group((61, 78), dx_iod=-0.11, dy_iod=-0.09, sigma_iod=0.2),
                Group((291, 308), dx_iod=0.11, dy_iod=-0.09, sigma_iod=0.2),
            ),
            pinned=NOSE + EYES,
        ),
        EventKind("brow_raise", "brows", _BROW_RAISE, pinned=EYES),
        EventKind(
            "brow_lower",
            "brows",
            (
                Group((107, 66, 55, 65), dx_iod=0.05, dy_iod=0.11, sigma_iod=0.12),
                Group((336, 296, 285, 295), dx_iod=-0.05, dy_iod=0.11, sigma_iod=0.12),
                Group((105, 52), dy_iod=0.055, sigma_iod=0.08),
                Group((334, 282), dy_iod=0.055, sigma_iod=0.08),
            ),
            pinned=EYES,
        ),
        EventKind(
            "eye_close",
            "eyes",
            (
                Group(R_UPPER_LID, lid_close=0.8, sigma_iod=0.05),
                Group(L_UPPER_LID, lid_close=0.8, sigma_iod=0.05),
            ),
            pinned=R_LOWER_LID + L_LOWER_LID + R_BROW + L_BROW,
        ),
        EventKind("jaw_drop", "mouth", _JAW_DROP, pinned=UPPER_LIP + NOSE),
        EventKind(
            "surprise",
            "brows+mouth",
            _BROW_RAISE + _JAW_DROP,
            pinned=EYES + UPPER_LIP + NOSE,
        ),
    )
}


def _lid_gap(mesh: np.ndarray, upper: tuple[int, ...]) -> float:
    """Vertical lid opening (px) of the eye whose upper lid is ``upper``."""
    lower = R_LOWER_LID if upper == R_UPPER_LID else L_LOWER_LID
    return float(np.mean(mesh[list(lower[3:6]), 1]) - np.mean(mesh[list(upper[2:5]), 1]))


def landmark_displacements(kind: EventKind, mesh: np.ndarray, iod_px: float) -> np.ndarray:
    """(N, 2) pixel displacement of every landmark of ``mesh`` (N, 2) at intensity 1."""
    out = np.zeros((len(mesh), 2))
    for g in kind.groups:
        src = mesh[list(g.ids)]
        d2 = np.min(np.sum((mesh[:, None, :] - src[None]) ** 2, axis=-1), axis=1)
        w = np.exp(-d2 / (2.0 * (g.sigma_iod * iod_px) ** 2))
        w[list(g.ids)] = 1.0
        w[w < 0.02] = 0.0
        if g.lid_close > 0:
            vec = np.array([0.0, g.lid_close * _lid_gap(mesh, g.ids)])
        else:
            vec = np.array([g.dx_iod, g.dy_iod]) * iod_px
        out += w[:, None] * vec[None]
    out[list(kind.pinned)] = 0.0
    return out
