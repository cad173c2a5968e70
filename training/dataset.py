"""Dataset directories and landmark files (design.md, "Contracts").

A dataset directory holds ``annotations.csv`` (columns ``subject,video,onset,apex,offset,type``
and an optional ``point``; frames 0-based inclusive; type ``macro`` or ``micro``) and
``landmarks/<video>.npz`` (``landmarks`` float32 (T, 478, 3) pixels, ``valid`` bool (T,),
``fps`` float, ``image_size`` (W, H)). Every loader (synthetic, CAS(ME)^2, SAMM-LV,
CAS(ME)^3) produces this layout; this module reads and checks it. Problems raise
:class:`pfes.errors.InputError` with a one-line message naming the file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pfes.errors import InputError
from stream.landmark_file import (
    N_LANDMARKS,
    LandmarkArrays,
    read_landmark_file,
    write_landmark_file,
)

__all__ = ["Annotation", "LandmarkVideo", "Dataset", "load_dataset", "load_landmarks",
           "save_landmarks", "N_LANDMARKS"]

KINDS = ("macro", "micro")


@dataclass(frozen=True)
class Annotation:
    subject: str
    video: str
    onset: int
    apex: int
    offset: int
    kind: str
    point: int | None = None


@dataclass
class LandmarkVideo:
    """landmarks: (T, 478, 3) float32 pixels (NaN where invalid); valid: (T,) bool."""

    landmarks: np.ndarray
    valid: np.ndarray
    fps: float
    image_size: tuple[int, int]

    @property
    def frames(self) -> int:
        return int(self.valid.shape[0])


def load_landmarks(path: str | os.PathLike) -> LandmarkVideo:
    """Read and check a landmark ``.npz`` (``stream.landmark_file``)."""
    d = read_landmark_file(path)
    return LandmarkVideo(d.landmarks, d.valid, d.fps, d.image_size)


def save_landmarks(path: str | os.PathLike, video: LandmarkVideo) -> None:
    """Write the landmark format (uncompressed, deterministic bytes)."""
    write_landmark_file(path, LandmarkArrays(video.landmarks, video.valid, video.fps,
                                             video.image_size))


@dataclass
class Dataset:
    root: Path
    annotations: list[Annotation]
    videos: list[str]
    subject_of: dict[str, str] = field(default_factory=dict)

    @property
    def subjects(self) -> list[str]:
        return sorted(set(self.subject_of.values()))

    def videos_of(self, subjects) -> list[str]:
        s = set(subjects)
        return [v for v in self.videos if self.subject_of[v] in s]

    def annotations_of(self, video: str) -> list[Annotation]:
        return [a for a in self.annotations if a.video == video]

    def landmarks(self, video: str) -> LandmarkVideo:
        return load_landmarks(self.root / "landmarks" / f"{video}.npz")

    def __iter__(self) -> Iterator[str]:
        return iter(self.videos)


def _int(row: dict, key: str, where: str) -> int:
    try:
        return int(row[key])
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"{where}: column {key!r} must be an integer, got {row.get(key)!r}") from e


def _read_annotations(ann_path: Path) -> list[Annotation]:
    with open(ann_path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheet BOMs
        reader = csv.DictReader(f)
        need = {"subject", "video", "onset", "apex", "offset", "type"}
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{ann_path}: missing columns {sorted(missing)}")
        has_point = "point" in (reader.fieldnames or [])
        anns = []
        for i, row in enumerate(reader, start=2):
            where = f"{ann_path}:{i}"
            kind = (row["type"] or "").strip().lower()
            if kind not in KINDS:
                raise InputError(f"{where}: type must be macro or micro, got {row['type']!r}")
            on, ap, off = (_int(row, k, where) for k in ("onset", "apex", "offset"))
            if not 0 <= on <= ap <= off:
                raise InputError(f"{where}: need 0 <= onset <= apex <= offset, got {on},{ap},{off}")
            pt = _int(row, "point", where) if has_point and row.get("point") not in (None, "") else None
            anns.append(Annotation(row["subject"].strip(), row["video"].strip(), on, ap, off, kind, pt))
    return anns


def load_dataset(root: str | os.PathLike) -> Dataset:
    """Read a dataset directory; checks columns, kinds, frame order and that files exist."""
    root = Path(root)
    ann_path = root / "annotations.csv"
    if not root.is_dir():
        raise InputError(f"dataset directory not found: {root}")
    if not ann_path.is_file():
        raise InputError(f"{root}: no annotations.csv (see design.md for the dataset layout)")
    try:
        anns = _read_annotations(ann_path)
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise InputError(f"{ann_path}: not a readable UTF-8 CSV ({type(e).__name__})") from e
    lm_dir = root / "landmarks"
    files = sorted(lm_dir.glob("*.npz")) if lm_dir.is_dir() else []
    videos = [p.stem for p in files]
    subject_of: dict[str, str] = {}
    for a in anns:
        if a.video not in videos:
            raise InputError(f"{ann_path}: video {a.video!r} has no landmarks/{a.video}.npz")
        prev = subject_of.setdefault(a.video, a.subject)
        if prev != a.subject:
            raise InputError(f"{ann_path}: video {a.video!r} listed under two subjects")
    for v in videos:  # videos without annotations still count (no expressions in them)
        subject_of.setdefault(v, v.split("_")[0])
    if not videos:
        raise InputError(f"{root}: no landmark files in landmarks/")
    return Dataset(root, anns, videos, subject_of)
