"""FACS action units as displacement fields on the canonical MediaPipe mesh.

Each action unit (AU) is a (478, 3) displacement field in canonical units (inter-ocular
distance, IOD = 1; x image-right, y down, z away from the camera) at full intensity (FACS "E").
The fields are written from the FACS description of each muscle's visible motion: a region,
a direction and a smooth fall-off (Gaussian radial basis functions around anchor landmarks,
eyelid and mouth-line masks), with magnitudes chosen as fractions of the IOD so that, e.g.,
AU12 moves the lip corner about 0.14 IOD up and out and AU1+2 raise the brows about 0.1 IOD.

Every field is split into the subject's right half (x < 0) and left half (x > 0) with a smooth
midline blend, so that unilateral actions (contempt) and bilateral ones share one basis:
``au_basis()["AU12_l"] + au_basis()["AU12_r"] == au_basis()["AU12"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from training.synth_face import GROUPS, neutral_mesh

__all__ = [
    "AU_NAMES",
    "AU_REGION",
    "TRACKER_GAIN",
    "au_fields",
    "au_basis",
    "mirror_index",
    "EXPRESSIONS",
    "MICRO_PATTERNS",
]

_MIDLINE_BLEND = 0.06  # IOD units: width of the left/right blend at the midline


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


@lru_cache(maxsize=1)
def _mirror_table() -> np.ndarray:
    m = neutral_mesh()
    mir = m * np.array([-1.0, 1.0, 1.0])
    d = ((mir[:, None, :] - m[None, :, :]) ** 2).sum(-1)
    table = d.argmin(axis=1)
    # the measured face is not exactly symmetric: take the contour pairs from the topology
    pairs: list[tuple[int, int]] = []
    for name in ("lip_upper_outer", "lip_lower_outer", "lip_upper_inner", "lip_lower_inner"):
        g = GROUPS[name]
        pairs += list(zip(g, g[::-1], strict=True))
    for right, left in (("eye_upper_r", "eye_upper_l"), ("eye_lower_r", "eye_lower_l"),
                        ("brow_r", "brow_l"), ("iris_r", "iris_l")):
        pairs += list(zip(GROUPS[right], GROUPS[left], strict=True))
    for a, b in pairs:
        table[a], table[b] = b, a
    return table


def mirror_index(i: int) -> int:
    """Index of the landmark mirror-symmetric to ``i`` (nearest point to its x-reflection)."""
    return int(_mirror_table()[i])


def _both(idx: tuple[int, ...]) -> list[int]:
    """Right-side anchors plus their mirrored left-side partners."""
    return list(idx) + [mirror_index(i) for i in idx]


def _rbf(m: np.ndarray, anchors: list[int], sigma: float) -> np.ndarray:
    """(478,) max over anchors of exp(-d^2 / 2 sigma^2), d the 3-D distance in IOD units."""
    d2 = ((m[:, None, :] - m[anchors][None, :, :]) ** 2).sum(-1)
    return np.exp(-d2.min(axis=1) / (2 * sigma**2))


def _lateral(m: np.ndarray) -> np.ndarray:
    """(478,) sign of the outward (away from the midline) x direction, smooth at the midline."""
    return np.tanh(m[:, 0] / _MIDLINE_BLEND)


def _mouth_lower(m: np.ndarray) -> np.ndarray:
    """(478,) weight in [0, 1]: 1 below the mouth line (jaw side), 0 above, 0.5 at the corners."""
    up, lo = m[list(GROUPS["lip_upper_inner"])], m[list(GROUPS["lip_lower_inner"])]
    mid = 0.5 * (up + lo)
    order = np.argsort(mid[:, 0])
    y_line = np.interp(m[:, 0], mid[order, 0], mid[order, 1])
    return _smoothstep((m[:, 1] - y_line) / 0.05 + 0.5)


def _lip_gap(m: np.ndarray) -> np.ndarray:
    """(478,) vertical inner-lip gap (IOD units) at each point's x (0 beyond the corners)."""
    up, lo = m[list(GROUPS["lip_upper_inner"])], m[list(GROUPS["lip_lower_inner"])]
    ou, ol = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
    yu = np.interp(m[:, 0], up[ou, 0], up[ou, 1])
    yl = np.interp(m[:, 0], lo[ol, 0], lo[ol, 1])
    return np.clip(yl - yu, 0.0, None)


def _eye_weights(m: np.ndarray, side: str, spread: float) -> tuple[np.ndarray, ...]:
    """Eyelid weights for one eye ('r' or 'l').

    Returns (upper, lower, gap): upper (478,) is 1 on the upper-lid contour and falls off with a
    Gaussian of width ``spread`` above it; lower likewise below the lower lid; both taper to 0
    at the eye corners. gap (478,) is the vertical lid opening at each point's x.
    """
    up = np.array(GROUPS[f"eye_upper_{side}"])
    lo = np.array(GROUPS[f"eye_lower_{side}"])
    pu, pl = m[up], m[lo]
    ou, ol = np.argsort(pu[:, 0]), np.argsort(pl[:, 0])
    x = m[:, 0]
    yu = np.interp(x, pu[ou, 0], pu[ou, 1])
    yl = np.interp(x, pl[ol, 0], pl[ol, 1])
    x0, x1 = pu[:, 0].min(), pu[:, 0].max()
    cx, hw = 0.5 * (x0 + x1), 0.5 * (x1 - x0)
    prof = np.clip(1 - ((x - cx) / hw) ** 2, 0.0, None)
    eps = 1e-6
    above = np.clip(yu - m[:, 1], 0.0, None)
    below = np.clip(m[:, 1] - yl, 0.0, None)
    upper = prof * (m[:, 1] <= yu + eps) * np.exp(-(above**2) / (2 * spread**2))
    lower = prof * (m[:, 1] >= yl - eps) * np.exp(-(below**2) / (2 * spread**2))
    iris = np.array(GROUPS[f"iris_{side}"])
    upper[iris] = 0.0
    lower[iris] = 0.0
    return upper, lower, np.clip(yl - yu, 0.0, None)


def _brow_mask(m: np.ndarray) -> np.ndarray:
    """(478,) 1 above the upper eyelid crease, 0 on and below the eye opening."""
    return _smoothstep((-0.05 - m[:, 1]) / 0.11)


def _vec(w: np.ndarray, dx: np.ndarray | float, dy: np.ndarray | float,
         dz: np.ndarray | float = 0.0) -> np.ndarray:
    out = np.zeros((len(w), 3))
    out[:, 0], out[:, 1], out[:, 2] = w * dx, w * dy, w * dz
    return out


# --------------------------------------------------------------------------------------------
# Action units. Each function takes the canonical mesh (478, 3) and returns the full-intensity
# displacement (478, 3) in IOD units. "Outward" means away from the face midline.


def _au1(m):  # inner brow raiser (frontalis, medial): inner brow ends move up, brow slants
    w = _rbf(m, _both((107, 55, 66, 65)), 0.12) * _brow_mask(m)
    w2 = _rbf(m, _both((107, 55)), 0.10) * _brow_mask(m)
    return _vec(np.maximum(w, w2), 0.0, -0.10)


def _au2(m):  # outer brow raiser (frontalis, lateral): outer brow arches up
    w = _rbf(m, _both((70, 46, 63, 53, 105)), 0.13) * _brow_mask(m)
    return _vec(w, 0.01 * _lateral(m), -0.10)


def _au4(m):  # brow lowerer (corrugator, procerus): brows down and drawn together
    mask = _smoothstep((0.02 - m[:, 1]) / 0.1)
    inner = _rbf(m, _both((107, 55, 65)), 0.12) * mask
    mid = _rbf(m, _both((105, 66, 52)), 0.13) * mask
    return _vec(inner, -0.05 * _lateral(m), 0.07) + _vec(mid, -0.02 * _lateral(m), 0.045)


def _au5(m):  # upper lid raiser (levator palpebrae): upper lid retracts, more iris shows
    out = np.zeros_like(m)
    for s in ("r", "l"):
        up, _, _ = _eye_weights(m, s, 0.05)
        out += _vec(up, 0.0, -0.045)
    return out


def _au6(m):  # cheek raiser (orbicularis oculi, orbital): cheeks up, lower lid pushed up
    out = _vec(_rbf(m, _both((50, 117, 118, 101)), 0.15), 0.0, -0.055)
    for s in ("r", "l"):
        _, lo, _ = _eye_weights(m, s, 0.07)
        out += _vec(lo, 0.0, -0.03)
    out += _vec(_rbf(m, _both((70, 46)), 0.1) * _brow_mask(m), 0.0, 0.015)  # lateral brow dips
    return out


def _au7(m):  # lid tightener (orbicularis oculi, palpebral): lower lid up, lids narrow
    out = np.zeros_like(m)
    for s in ("r", "l"):
        up, lo, _ = _eye_weights(m, s, 0.03)
        out += _vec(lo, 0.0, -0.04) + _vec(up, 0.0, 0.015)
    return out


def _au9(m):  # nose wrinkler (levator labii alaeque nasi): nose wings and upper lip up
    upper = 1.0 - _mouth_lower(m)
    wing = _rbf(m, _both((129, 98, 48, 64, 240)), 0.11)
    lip = _rbf(m, _both((37, 0)), 0.13) * upper
    brow = _rbf(m, _both((107, 55)), 0.09) * _brow_mask(m)  # medial brow pulled down
    bridge = _rbf(m, [168, 6, 197], 0.1)
    return (_vec(wing, 0.0, -0.06) + _vec(lip, 0.0, -0.03) + _vec(brow, 0.0, 0.03)
            + _vec(bridge, 0.0, -0.015))


def _au10(m):  # upper lip raiser (levator labii superioris): upper lip raised, centre most
    upper = 1.0 - _mouth_lower(m)
    lip = _rbf(m, _both((37, 39, 82, 81)) + [0, 13], 0.12) * upper
    wing = _rbf(m, _both((129, 98)), 0.1)
    return _vec(lip, 0.0, -0.07) + _vec(wing, 0.0, -0.02)


def _au12(m):  # lip corner puller (zygomaticus major): corners obliquely up and out
    corner = _rbf(m, _both((61, 78)), 0.14)
    cheek = _rbf(m, _both((205, 187)), 0.15)
    return (_vec(corner, 0.11 * _lateral(m), -0.08, 0.02)
            + _vec(cheek, 0.02 * _lateral(m), -0.035))


def _au14(m):  # dimpler (buccinator): corners tightened, drawn slightly out and back
    corner = _rbf(m, _both((61, 78)), 0.11)
    return _vec(corner, 0.055 * _lateral(m), -0.02, 0.05)


def _au15(m):  # lip corner depressor (depressor anguli oris): corners pulled down
    corner = _rbf(m, _both((61, 78)), 0.13)
    low = _rbf(m, _both((91, 181)), 0.12) * _mouth_lower(m)
    return _vec(corner, 0.015 * _lateral(m), 0.07) + _vec(low, 0.0, 0.02)


def _au17(m):  # chin raiser (mentalis): chin boss up, lower lip pushed up
    lower = _mouth_lower(m)
    chin = _rbf(m, [200, 199, 18, 175] + _both((201, 208)), 0.16) * lower
    lip = _rbf(m, [17, 14] + _both((84, 87)), 0.1) * lower
    return _vec(chin, 0.0, -0.06) + _vec(lip, 0.0, -0.04, -0.02)


def _au20(m):  # lip stretcher (risorius): corners pulled laterally, lips flatten
    corner = _rbf(m, _both((61, 78)), 0.14)
    return _vec(corner, 0.09 * _lateral(m), 0.015)


def _au23(m):  # lip tightener (orbicularis oris): lips narrow and thin
    corner = _rbf(m, _both((61, 78)), 0.1)
    lower = _mouth_lower(m)
    up = _rbf(m, [0, 13] + _both((37, 39)), 0.08) * (1 - lower)
    lo = _rbf(m, [17, 14] + _both((84, 181)), 0.08) * lower
    return _vec(corner, -0.04 * _lateral(m), 0.0) + _vec(up, 0.0, 0.015) + _vec(lo, 0.0, -0.015)


def _au24(m):  # lip presser (orbicularis oris): lips pressed together, opening closes
    lower = _mouth_lower(m)
    lips = _rbf(m, list(GROUPS["lip_upper_inner"] + GROUPS["lip_lower_inner"]), 0.1)
    gap = np.clip(_lip_gap(m), 0.0, 0.08)
    return _vec(lips * (1 - lower), 0.0, 0.45 * gap) + _vec(lips * lower, 0.0, -0.5 * gap) \
        + _vec(_rbf(m, _both((61,)), 0.08), -0.015 * _lateral(m), 0.0)


def _au25(m):  # lips part (depressor labii, relaxed mentalis): lower lip drops, jaw still
    lower = _mouth_lower(m)
    lo = _rbf(m, [17, 14] + _both((84, 87, 181, 178)), 0.12) * lower
    up = _rbf(m, [0, 13] + _both((37, 82)), 0.1) * (1 - lower)
    return _vec(lo, 0.0, 0.06) + _vec(up, 0.0, -0.015)


def _au26(m):  # jaw drop (masseter relaxed): lower face rotates down about the jaw hinge
    lower = _mouth_lower(m)
    pivot = np.array([0.0, 0.25, 0.95])
    theta = 0.17  # radians at full intensity: chin moves about 0.2 IOD down
    rel = m - pivot
    c, s = np.cos(theta), np.sin(theta)
    ny = rel[:, 1] * c - rel[:, 2] * s
    nz = rel[:, 1] * s + rel[:, 2] * c
    out = np.zeros_like(m)
    out[:, 1] = (ny - rel[:, 1]) * lower
    out[:, 2] = (nz - rel[:, 2]) * lower
    return out


def _au43(m):  # eyes closed (levator relaxed, orbicularis): upper lid meets lower lid
    out = np.zeros_like(m)
    for s in ("r", "l"):
        up, _, gap = _eye_weights(m, s, 0.05)
        _, lo, _ = _eye_weights(m, s, 0.025)
        out += _vec(up, 0.0, 0.88 * gap) + _vec(lo, 0.0, -0.1 * gap)
        iris = list(GROUPS[f"iris_{s}"])
        out[iris, 1] += 0.03  # the tracker's iris sinks with the closing lid
    out += _vec(_rbf(m, _both((105, 66)), 0.1) * _brow_mask(m), 0.0, 0.01)
    return out


def _lips_close(m):  # not an AU: closes the measured face's parted lips (identity variation)
    lower = _mouth_lower(m)
    lips = _rbf(m, list(GROUPS["lip_upper_inner"] + GROUPS["lip_lower_inner"]), 0.1)
    gap = _lip_gap(m)
    return _vec(lips * (1 - lower), 0.0, 0.45 * gap) + _vec(lips * lower, 0.0, -0.45 * gap)


def _gaze(m, axis):  # not an AU: the eyes look aside (x) or down (y); iris moves, lids follow
    out = np.zeros_like(m)
    for s in ("r", "l"):
        iris = list(GROUPS[f"iris_{s}"])
        out[iris, axis] = 0.1 if axis == 0 else 0.06
        if axis == 1:  # looking down lowers the upper lid with the eye (a blink look-alike)
            up, _, _ = _eye_weights(m, s, 0.05)
            out += _vec(up, 0.0, 0.04)
    return out


_FIELDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "AU1": _au1, "AU2": _au2, "AU4": _au4, "AU5": _au5, "AU6": _au6, "AU7": _au7,
    "AU9": _au9, "AU10": _au10, "AU12": _au12, "AU14": _au14, "AU15": _au15, "AU17": _au17,
    "AU20": _au20, "AU23": _au23, "AU24": _au24, "AU25": _au25, "AU26": _au26, "AU43": _au43,
}

AU_NAMES: tuple[str, ...] = tuple(_FIELDS)

# How much of each AU's motion MediaPipe 0.10.21 (refine_landmarks) reports: measured by
# `python scripts/measure_neutral_mesh.py --tracker-gain` (piecewise-affine warps of the
# astronaut photo by these fields; projection of the tracked motion on the injected one).
# The face-mesh prior under-reports brow, cheek and nose motion most. Eyelid AUs cannot be
# measured by warping (a squeezed eye still looks open): their values are a judgement.
TRACKER_GAIN: dict[str, float] = {
    "AU1": 0.74, "AU2": 0.52, "AU4": 0.51, "AU5": 0.7, "AU6": 0.12, "AU7": 0.7, "AU9": 0.27,
    "AU10": 0.84, "AU12": 0.79, "AU14": 0.57, "AU15": 0.63, "AU17": 0.77, "AU20": 0.59,
    "AU23": 0.56, "AU24": 0.91, "AU25": 0.61, "AU26": 0.67, "AU43": 0.8,
    "gaze_x": 1.0, "gaze_y": 1.0,
}

# Face region each AU mainly moves (used by tests and by micro-expression sampling).
AU_REGION: dict[str, str] = {
    "AU1": "brows", "AU2": "brows", "AU4": "brows", "AU5": "eyes", "AU6": "eyes", "AU7": "eyes",
    "AU9": "nose", "AU10": "mouth", "AU12": "mouth", "AU14": "mouth", "AU15": "mouth",
    "AU17": "chin", "AU20": "mouth", "AU23": "mouth", "AU24": "mouth", "AU25": "mouth",
    "AU26": "chin", "AU43": "eyes",
}


@lru_cache(maxsize=1)
def au_fields() -> dict[str, np.ndarray]:
    """Bilateral full-intensity fields: name -> (478, 3) float64 on the canonical mesh."""
    m = neutral_mesh()
    out = {k: f(m) for k, f in _FIELDS.items()}
    out["lips_close"] = _lips_close(m)
    out["smile_relax"] = -0.5 * out["AU12"]
    out["gaze_x"] = _gaze(m, 0)
    out["gaze_y"] = _gaze(m, 1)
    for v in out.values():
        v.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def au_basis() -> dict[str, np.ndarray]:
    """Bilateral fields plus halves: ``NAME``, ``NAME_r`` (subject's right, x<0), ``NAME_l``."""
    m = neutral_mesh()
    left = 0.5 * (1 + np.tanh(m[:, 0] / _MIDLINE_BLEND))[:, None]
    out: dict[str, np.ndarray] = {}
    for k, v in au_fields().items():
        out[k] = v
        out[f"{k}_l"] = v * left
        out[f"{k}_r"] = v * (1 - left)
    for v in out.values():
        v.setflags(write=False)
    return out


# Prototypical expressions (AU lists; "u" marks AUs applied on one side only).
EXPRESSIONS: dict[str, tuple[str, ...]] = {
    "happiness": ("AU6", "AU12"),
    "happiness_open": ("AU6", "AU12", "AU25"),
    "surprise": ("AU1", "AU2", "AU5", "AU26"),
    "disgust": ("AU9", "AU15", "AU10"),
    "anger": ("AU4", "AU5", "AU7", "AU23"),
    "anger_press": ("AU4", "AU7", "AU24", "AU17"),
    "sadness": ("AU1", "AU4", "AU15"),
    "fear": ("AU1", "AU2", "AU4", "AU5", "AU20", "AU26"),
    "contempt": ("AU12u", "AU14u"),
}

# Small, usually one-region patterns typical of micro-expressions.
MICRO_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("AU12",), ("AU6", "AU12"), ("AU12u",), ("AU14u",), ("AU12u", "AU14u"), ("AU4",),
    ("AU1", "AU2"), ("AU1", "AU4"), ("AU1",), ("AU2",), ("AU7",), ("AU4", "AU7"),
    ("AU9", "AU10"), ("AU10",), ("AU15",), ("AU17",), ("AU15", "AU17"), ("AU23",), ("AU24",),
    ("AU20",), ("AU5",),
)
