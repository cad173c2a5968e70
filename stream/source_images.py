"""A folder of still images played as a video (how the spotting datasets ship their frames).

CAS(ME)^2 and SAMM-LV come as one JPEG per frame (``img1.jpg``, ``img2.jpg``, ... or
``006_1_0001.jpg``, ...). :func:`list_images` orders such files by the number in their name
(``img10`` after ``img9``, not after ``img1``); :class:`ImageSequenceSource` yields them as
:class:`~stream.frames.Frame` objects at a given frame rate, optionally keeping only every
``step``-th file (a 200 fps dataset read at 200 / 7 = 28.6 fps).

A file that cannot be decoded becomes a black frame (no face is found there, so the landmark
file marks it invalid) and is counted in ``unreadable``: one damaged JPEG in a two-hour
dataset should cost one frame, not the video. A folder without images raises InputError.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pfes.errors import InputError
from stream.frames import Frame, Source

__all__ = ["IMAGE_SUFFIXES", "list_images", "ImageSequenceSource"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_DIGITS = re.compile(r"(\d+)")


def _natural_key(path: Path) -> tuple:
    parts = _DIGITS.split(path.stem)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, in natural order of their names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frame folder not found: {folder}")
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return sorted(files, key=_natural_key)


def _read_rgb(path: Path) -> np.ndarray | None:
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)  # np.fromfile: non-ASCII paths work too
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        return None
    return np.ascontiguousarray(img[:, :, ::-1])


class ImageSequenceSource(Source):
    """Yield the images ``files[0], files[step], files[2 * step], ...`` as frames.

    fps: frame rate of the files as recorded; the frames come out at ``fps / step``.
    Frame ``index`` counts yielded frames from 0; ``pts_s`` is ``index * step / fps``.
    """

    def __init__(self, files: Sequence[str | Path], fps: float, step: int = 1,
                 name: str = "images"):
        if fps <= 0:
            raise InputError(f"frame rate must be > 0, got {fps}")
        if step < 1:
            raise InputError(f"frame step must be >= 1, got {step}")
        self.files = [Path(f) for f in files][::step]
        if not self.files:
            raise InputError("no image files given")
        self.step = int(step)
        self.source_fps = float(fps)
        self.fps = float(fps) / step
        self.name = name
        self.size = (0, 0)
        self.dropped = 0
        self.unreadable = 0
        self.n_frames = len(self.files)
        self._first: np.ndarray | None = None

    def open(self) -> None:
        if self._first is not None:
            return
        for f in self.files:  # the first decodable image fixes the frame size
            img = _read_rgb(f)
            if img is not None:
                self._first = img
                self.size = (int(img.shape[1]), int(img.shape[0]))
                return
        raise InputError(f"none of the {len(self.files)} images could be decoded "
                         f"(first: {self.files[0]})")

    def close(self) -> None:
        self._first = None

    def frames(self) -> Iterator[Frame]:
        self.open()
        w, h = self.size
        for i, f in enumerate(self.files):
            img = _read_rgb(f)
            if img is None or img.shape[:2] != (h, w):
                self.unreadable += 1
                log.warning("cannot use %s (%s); frame %d left without a face", f,
                            "unreadable" if img is None else "different size", i)
                img = np.zeros((h, w, 3), np.uint8)
            yield Frame(index=i, image=img, pts_s=i * self.step / self.source_fps,
                        arrival_s=time.monotonic())

    def __repr__(self) -> str:
        return f"ImageSequenceSource({len(self.files)} files, fps={self.fps:.3f})"
