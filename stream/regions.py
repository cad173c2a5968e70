"""MediaPipe face-mesh landmark index sets used by alignment and the per-frame features.

The indices refer to the 478-point MediaPipe face mesh with iris refinement
(``refine_landmarks=True``): 0-467 are the face mesh, 468-472 the subject's right iris (centre 468)
and 473-477 the subject's left iris (centre 473).

Side convention: ``_r`` / ``_l`` are the **subject's** right / left, as in FACS. In an unmirrored
camera image the subject's right side appears on the image's left (smaller x); for example the
right mouth corner 61 has a smaller x than the left mouth corner 291.

Checked on ``skimage.data.astronaut()`` (MediaPipe 0.10.21): 61 left of 291 in image x, brows
above the upper lids, upper lids above lower lids, nose wings level with the nose tip, chin
lowest. ``tests/test_features_regions.py`` re-checks the geometry when MediaPipe is available.

Two kinds of sets:

* ``STABLE``: points that barely move with facial expressions (nose bridge and dorsum, eye
  corners, upper forehead, face contour beside the ears). A similarity transform fitted on these
  removes head motion without absorbing expression motion.
* ``REGIONS``: expression regions, chosen to separate the main FACS action units: inner brow
  (AU1, AU4), outer brow (AU2), upper lid (AU5, blinks), lower lid (AU6/AU7), nose wing
  (AU9/AU10), cheek (AU6), mouth corner (AU12, AU15, AU20), upper lip (AU10), lower lip
  (AU16, AU25/26) and chin (AU17, AU26).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "N_LANDMARKS",
    "NOSE_TIP",
    "IRIS_CENTER_R",
    "IRIS_CENTER_L",
    "EYE_OUTER_R",
    "EYE_INNER_R",
    "EYE_INNER_L",
    "EYE_OUTER_L",
    "MOUTH_CORNER_R",
    "MOUTH_CORNER_L",
    "CHIN",
    "STABLE",
    "REGIONS",
    "REGION_NAMES",
    "REGION_GROUPS",
    "GROUP_NAMES",
    "region_matrix",
]

N_LANDMARKS = 478

NOSE_TIP = 1
IRIS_CENTER_R = 468
IRIS_CENTER_L = 473
EYE_OUTER_R = 33
EYE_INNER_R = 133
EYE_INNER_L = 362
EYE_OUTER_L = 263
MOUTH_CORNER_R = 61
MOUTH_CORNER_L = 291
CHIN = 152

# Points for the head-motion fit. Eye corners move a little with squinting (AU6/7) and the
# forehead a little with strong brow raises; the fit is least squares over all of them, so such
# small local motion is diluted. Glabella points (8, 9) are left out: AU4 pulls them.
# fmt: off
STABLE: tuple[int, ...] = (
    # nose bridge and dorsum (top to bottom)
    168, 6, 197, 195, 5, 4,
    # eye corners: outer right, inner right, inner left, outer left
    33, 133, 362, 263,
    # upper forehead
    10, 151, 109, 338,
    # face contour beside the ears (right then left)
    127, 234, 93, 356, 454, 323,
)
# fmt: on

# Expression regions, in feature order. Each region's position is the mean of its points.
REGIONS: dict[str, tuple[int, ...]] = {
    "brow_inner_r": (107, 66, 55, 65),
    "brow_inner_l": (336, 296, 285, 295),
    "brow_outer_r": (70, 63, 105, 46, 53, 52),
    "brow_outer_l": (300, 293, 334, 276, 283, 282),
    "upper_lid_r": (246, 161, 160, 159, 158, 157, 173),
    "upper_lid_l": (466, 388, 387, 386, 385, 384, 398),
    "lower_lid_r": (7, 163, 144, 145, 153, 154, 155),
    "lower_lid_l": (249, 390, 373, 374, 380, 381, 382),
    "nose_wing_r": (48, 64, 102, 129, 49, 98),
    "nose_wing_l": (278, 294, 331, 358, 279, 327),
    "cheek_r": (50, 205, 36, 101, 118, 187),
    "cheek_l": (280, 425, 266, 330, 347, 411),
    "mouth_corner_r": (61, 76, 62, 78),
    "mouth_corner_l": (291, 306, 292, 308),
    "upper_lip": (0, 37, 267, 39, 269, 13, 82, 312, 81, 311),
    "lower_lip": (17, 84, 314, 181, 405, 14, 87, 317, 178, 402),
    "chin": (152, 148, 377, 175, 199),
}
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)

# Bilateral groups for the temporal-difference features: a group's value is the mean over its
# regions, so a one-sided movement still shows (at half strength) and left/right asymmetry is
# kept in the per-region displacement features.
REGION_GROUPS: dict[str, tuple[str, ...]] = {
    "brow_inner": ("brow_inner_r", "brow_inner_l"),
    "brow_outer": ("brow_outer_r", "brow_outer_l"),
    "upper_lid": ("upper_lid_r", "upper_lid_l"),
    "lower_lid": ("lower_lid_r", "lower_lid_l"),
    "nose_wing": ("nose_wing_r", "nose_wing_l"),
    "cheek": ("cheek_r", "cheek_l"),
    "mouth_corner": ("mouth_corner_r", "mouth_corner_l"),
    "upper_lip": ("upper_lip",),
    "lower_lip": ("lower_lip",),
    "chin": ("chin",),
}
GROUP_NAMES: tuple[str, ...] = tuple(REGION_GROUPS)


def region_matrix(points: tuple[int, ...]) -> np.ndarray:
    """Averaging matrix from a gathered point list to region centroids.

    points: the landmark indices that were gathered, in order (every region point must be in it).
    Returns (R, len(points)) float64 with rows summing to 1, R = len(REGION_NAMES); row r averages
    the points of region r, so ``region_matrix(points) @ xy[points]`` gives (R, 2) centroids.
    """
    pos = {p: i for i, p in enumerate(points)}
    m = np.zeros((len(REGION_NAMES), len(points)), dtype=np.float64)
    for r, name in enumerate(REGION_NAMES):
        idx = REGIONS[name]
        for p in idx:
            m[r, pos[p]] += 1.0 / len(idx)
    return m
