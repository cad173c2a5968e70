"""Measure the neutral face mesh used by the synthetic generator.

Runs MediaPipe face mesh (478 points, iris refinement) on ``skimage.data.astronaut()`` (a public
domain photograph), frontalises the result with a rigid fit and writes
``training/assets/neutral_mesh.npy``: float32 (478, 3), centred on the mean of the two eye
centres, x to image-right, y down, z away from the camera (MediaPipe's sign), in units of the
inter-ocular distance (distance between the two iris centres = 1).

Frontalisation: roll, yaw and pitch are removed by a rotation that makes the face's left-right
axis (mean of eye-corner, mouth-corner, cheek and brow pair vectors) parallel to x and the
midline (forehead to chin) parallel to y. No mirror averaging: the mesh keeps the real, slightly
asymmetric face.

Usage: ``python scripts/measure_neutral_mesh.py [--out PATH]``; with ``--tracker-gain`` it
instead prints how much of each action unit's motion MediaPipe reports on warps of the same
photo (the source of ``TRACKER_GAIN`` in training/synth_aus.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# canonical MediaPipe pairs (subject's right, subject's left) used to define the horizontal axis
_LR_PAIRS = [(33, 263), (133, 362), (61, 291), (234, 454), (127, 356), (70, 300), (50, 280)]
# midline points, top to bottom, used to define the vertical axis
_MIDLINE = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 0, 13, 14, 17, 18, 200, 199, 175, 152]


def measure(image: np.ndarray) -> np.ndarray:
    """Run MediaPipe face mesh on an RGB uint8 image; return (478, 3) pixel landmarks."""
    import mediapipe as mp

    h, w = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=1
    ) as fm:
        res = fm.process(image)
    if not res.multi_face_landmarks:
        raise RuntimeError("no face found")
    lm = res.multi_face_landmarks[0].landmark
    pts = np.array([[p.x * w, p.y * h, p.z * w] for p in lm], dtype=np.float64)
    if pts.shape != (478, 3):
        raise RuntimeError(f"expected 478 landmarks, got {pts.shape}")
    return pts


def frontalise(pts: np.ndarray) -> np.ndarray:
    """Rotate, centre and scale pixel landmarks (478, 3) into a frontal unit-IOD mesh."""
    return frontal_transform(pts)[0]


def frontal_transform(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(mesh (478, 3) float32, rotation (3, 3) whose rows are the new axes, IOD in pixels)."""
    p = pts - pts.mean(axis=0)
    # horizontal axis: mean of left-minus-right vectors
    xa = np.mean([p[b] - p[a] for a, b in _LR_PAIRS], axis=0)
    xa /= np.linalg.norm(xa)
    # vertical axis: principal direction of the midline points, oriented top -> bottom
    mid = p[_MIDLINE]
    mid = mid - mid.mean(axis=0)
    _, _, vt = np.linalg.svd(mid)
    ya = vt[0]
    if np.dot(ya, p[152] - p[10]) < 0:
        ya = -ya
    ya = ya - np.dot(ya, xa) * xa
    ya /= np.linalg.norm(ya)
    za = np.cross(xa, ya)
    rot = np.stack([xa, ya, za])  # rows: new axes
    q = p @ rot.T
    iod = np.linalg.norm(q[473, :2] - q[468, :2])
    centre = 0.5 * (q[468] + q[473])
    q = (q - centre) / iod
    return q.astype(np.float32), rot, float(iod)


# candidate stable points (forehead, nose, temples, jaw angles); per AU only those it leaves
# still are used to remove the warp's incidental similarity transform
_STABLE = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 234, 454, 127, 356, 93, 323, 132, 361]
# eyelid AUs are not measured: a warp squeezes the eye instead of covering it with a lid, so
# the tracker still sees an open eye (a trial gave a gain of 0.07 for AU43)
_EYELID_AUS = ("AU5", "AU7", "AU43")


def measure_tracker_gain() -> dict[str, float]:
    """How much of each AU's motion MediaPipe reports, on warps of the same photo.

    The astronaut photo is upscaled 2x and cropped around the face; each AU's full-intensity
    field (training.synth_aus) is mapped to pixels and applied with a piecewise-affine warp on
    the 478 landmarks. Gain = projection of the measured displacement (warped minus neutral
    landmarks, after a similarity fit on points the AU leaves still) onto the injected one,
    over the points that move at least 30% of the maximum. Prints and returns {AU: gain}.
    """
    import cv2
    from skimage import data
    from skimage.transform import PiecewiseAffineTransform, warp

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from training.synth_aus import AU_NAMES, au_fields

    big = cv2.resize(data.astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    p = measure(big)
    x0, y0 = (p[:, :2].min(axis=0) - 80).astype(int).clip(0)
    x1, y1 = (p[:, :2].max(axis=0) + 80).astype(int)
    img = np.ascontiguousarray(big[y0:y1, x0:x1])
    p0 = measure(img)
    _, rot, iod = frontal_transform(p0)
    h, w = img.shape[:2]
    border = np.array([(x, y) for x in np.linspace(0, w - 1, 7) for y in (0.0, h - 1.0)]
                      + [(x, y) for x in (0.0, w - 1.0) for y in np.linspace(0, h - 1, 7)[1:-1]])
    gains = {}
    for au in AU_NAMES:
        if au in _EYELID_AUS:
            continue
        d = au_fields()[au] @ rot * iod  # canonical -> pixel axes (q = p @ rot.T)
        dn = np.linalg.norm(d[:, :2], axis=1)
        stable = [i for i in _STABLE if dn[i] < 0.03 * dn.max()]
        tf = PiecewiseAffineTransform()
        tf.estimate(np.vstack([p0[:, :2] + d[:, :2], border]), np.vstack([p0[:, :2], border]))
        warped = warp(img, tf, preserve_range=True).round().clip(0, 255).astype(np.uint8)
        p1 = measure(warped)
        a, b = p1[stable, :2], p0[stable, :2]
        ma, mb = a.mean(0), b.mean(0)
        u, sv, vt = np.linalg.svd((a - ma).T @ (b - mb))
        sc = sv.sum() / ((a - ma) ** 2).sum()
        m = (p1[:, :2] - ma) @ (u @ vt) * sc + mb - p0[:, :2]
        sel = dn > 0.3 * dn.max()
        gains[au] = float((m[sel] * d[sel, :2]).sum() / (d[sel, :2] ** 2).sum())
        print(f"{au}: injected max {dn.max() / iod:.3f} IOD, {len(stable)} stable points, "
              f"tracker gain {gains[au]:.2f}", file=sys.stderr)
    return gains


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    assets = Path(__file__).resolve().parents[1] / "training" / "assets"
    ap.add_argument("--out", default=str(assets / "neutral_mesh.npy"))
    ap.add_argument("--tracker-gain", action="store_true",
                    help="instead print how much of each AU's warp MediaPipe reports")
    args = ap.parse_args(argv)
    if args.tracker_gain:
        measure_tracker_gain()
        return 0
    from skimage import data

    img = data.astronaut()
    pts = measure(img)
    mesh = frontalise(pts)
    np.save(args.out, mesh)
    lr = mesh[263, 0] - mesh[33, 0]
    print(f"wrote {args.out}: shape {mesh.shape}, eye-corner span {lr:.3f} IOD, "
          f"chin y {mesh[152, 1]:.3f}, forehead y {mesh[10, 1]:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
