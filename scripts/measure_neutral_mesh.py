"""Measure the neutral face mesh used by the synthetic generator.

Runs MediaPipe face mesh (478 points, iris refinement) on ``skimage.data.astronaut()`` (a public
domain photograph), frontalises the result with a rigid fit and writes
``training/assets/neutral_mesh.npy``: float32 (478, 3), centred on the mean of the two eye
centres, x to image-right, y down, z away from the camera (MediaPipe's sign), in units of the
inter-ocular distance (distance between the two iris centres = 1).

Frontalisation: roll, yaw and pitch are removed by fitting a rotation that makes the face's
left-right axis (eye-corner / cheek pairs) parallel to x and the vertical axis (forehead to
chin, nose-bridge to nose-tip midline) parallel to y, then mirroring-averaging is NOT applied, so
the mesh keeps the real, slightly asymmetric face.

Usage: ``python scripts/measure_neutral_mesh.py [--out PATH]``
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                         / "training" / "assets" / "neutral_mesh.npy"))
    args = ap.parse_args(argv)
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
