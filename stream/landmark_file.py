"""The landmark file of design.md: one reader and one writer for every part of pfes.

``.npz`` with ``landmarks`` float32 (T, 478, 3) in source-image pixels (x, y; z on the x
scale), NaN where no face; ``valid`` bool (T,); ``fps`` float; ``image_size`` (W, H). Optional
extras written by ``pfes extract``: ``pts_s`` float64 (T,) presentation times and ``track_id``
int32 (T,) (-1 where no face). Pure numpy; errors are :class:`pfes.errors.InputError` with a
one-line message naming the file. (The synthetic generator writes the same arrays through its
own byte-deterministic zip writer.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pfes.errors import InputError

__all__ = ["N_LANDMARKS", "LandmarkArrays", "read_landmark_file", "write_landmark_file"]

N_LANDMARKS = 478


@dataclass
class LandmarkArrays:
    """Contents of a landmark file. ``valid`` is False wherever a landmark is not finite."""

    landmarks: np.ndarray  # (T, 478, 3) float32
    valid: np.ndarray  # (T,) bool
    fps: float
    image_size: tuple[int, int]  # (W, H)
    pts_s: np.ndarray | None = None  # (T,) float64, if the file has it
    track_id: np.ndarray | None = None  # (T,) int32, if the file has it


def read_landmark_file(path: str | os.PathLike) -> LandmarkArrays:
    """Read and check a landmark ``.npz``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"landmark file not found: {p}")
    bad = f"malformed landmark file {p}"
    try:
        with np.load(p, allow_pickle=False) as z:
            lm = np.asarray(z["landmarks"], dtype=np.float32)
            valid = np.asarray(z["valid"], dtype=bool)
            fps = float(np.asarray(z["fps"]))
            size = tuple(int(v) for v in np.asarray(z["image_size"]).ravel())
            pts = np.asarray(z["pts_s"], dtype=np.float64) if "pts_s" in z else None
            tid = np.asarray(z["track_id"], dtype=np.int32) if "track_id" in z else None
    except KeyError as e:
        raise InputError(f"{bad}: missing array {e} (want landmarks, valid, fps, image_size)") from e
    except Exception as e:  # zipfile, OSError, ValueError: all mean the same to a user
        raise InputError(f"{p}: not a readable landmark .npz ({type(e).__name__})") from e
    if lm.ndim != 3 or lm.shape[1:] != (N_LANDMARKS, 3):
        raise InputError(f"{bad}: landmarks shape {lm.shape}, want (T, {N_LANDMARKS}, 3)")
    t = lm.shape[0]
    if valid.shape != (t,):
        raise InputError(f"{bad}: valid shape {valid.shape}, want ({t},)")
    if not fps > 0:
        raise InputError(f"{bad}: fps must be > 0, got {fps}")
    if len(size) != 2:
        raise InputError(f"{bad}: image_size {size}, want (W, H)")
    for name, arr in (("pts_s", pts), ("track_id", tid)):
        if arr is not None and arr.shape != (t,):
            raise InputError(f"{bad}: {name} shape {arr.shape}, want ({t},)")
    finite = np.isfinite(lm).all(axis=(1, 2))
    if valid.any() and not finite.any():  # faces claimed, none given: a broken file
        raise InputError(f"{bad}: landmarks are NaN in every frame, yet {int(valid.sum())} of "
                         f"{t} frames are marked valid")
    valid = valid & finite
    return LandmarkArrays(lm, valid, fps, (size[0], size[1]), pts, tid)


def write_landmark_file(path: str | os.PathLike, data: LandmarkArrays, compressed: bool = False) -> Path:
    """Write ``data`` (NaN written where not valid); creates the parent folder."""
    p = Path(path)
    arrays: dict[str, np.ndarray] = {
        "landmarks": np.where(data.valid[:, None, None], data.landmarks, np.nan).astype(np.float32),
        "valid": data.valid.astype(bool),
        "fps": np.asarray(data.fps, np.float64),
        "image_size": np.asarray(data.image_size, np.int32),
    }
    if data.pts_s is not None:
        arrays["pts_s"] = np.asarray(data.pts_s, np.float64)
    if data.track_id is not None:
        arrays["track_id"] = np.asarray(data.track_id, np.int32)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    except OSError as e:
        raise InputError(f"cannot write {p}: {e.strerror or e}") from e
    return p
