"""Offline landmark extraction: a video file -> the landmark ``.npz`` of design.md.

File format (written by :func:`save_landmarks_npz`, read by :func:`load_landmarks_npz`):

- ``landmarks`` float32 (T, 478, 3): pixels of the source image (x, y; z on the x scale), NaN
  in frames without the followed face;
- ``valid`` bool (T,): False where no face was found;
- ``fps`` float (scalar); ``image_size`` int (2,): (W, H);
- extras: ``pts_s`` float64 (T,) source timestamps, ``track_id`` int32 (T,), -1 where invalid.

With several faces in view one face is followed (the "primary" track): the first face seen;
while its track lives only it is recorded; when the track ends (lost for more than
``max_missed_frames``), the largest face in view becomes the primary track. A single person who
leaves and comes back is therefore one continuous series with a gap of invalid frames.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pfes.errors import InputError
from stream.frames import Source
from stream.landmark_file import LandmarkArrays, read_landmark_file, write_landmark_file
from stream.source_file import FileSource
from stream.tracker import N_LANDMARKS, FaceTracker, TrackedFace, make_tracker

__all__ = [
    "LandmarkSeries",
    "PrimaryTrack",
    "extract_landmarks",
    "save_landmarks_npz",
    "load_landmarks_npz",
]

log = logging.getLogger(__name__)


@dataclass
class LandmarkSeries:
    """Landmarks of one followed face over a video (see the module docstring for units)."""

    landmarks: np.ndarray  # (T, 478, 3) float32 px, NaN where invalid
    valid: np.ndarray  # (T,) bool
    fps: float
    image_size: tuple[int, int]  # (W, H)
    pts_s: np.ndarray  # (T,) float64
    track_id: np.ndarray  # (T,) int32, -1 where invalid

    @property
    def n_frames(self) -> int:
        return int(len(self.valid))


class PrimaryTrack:
    """Choose the followed face frame by frame (push one frame's faces, get one or None)."""

    def __init__(self) -> None:
        self.track_id: int | None = None

    def reset(self) -> None:
        self.track_id = None

    def push(self, faces: list[TrackedFace], live_ids: list[int]) -> TrackedFace | None:
        """faces: this frame's faces; live_ids: tracks still alive after this frame."""
        if self.track_id is not None and self.track_id not in live_ids:
            self.track_id = None
        if self.track_id is None and faces:

            def area(f: TrackedFace) -> float:
                return (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])

            self.track_id = max(faces, key=area).track_id
        for f in faces:
            if f.track_id == self.track_id:
                return f
        return None


def extract_landmarks(
    path: str | Path | Source,
    tracker: FaceTracker | None = None,
    face_model: str | Path | None = None,
    max_faces: int = 1,
    progress: bool = False,
) -> LandmarkSeries:
    """Decode ``path`` and track faces in every frame; return the primary face's series.

    path: a video file, or a ready :class:`~stream.frames.Source` (e.g. an
    :class:`~stream.source_images.ImageSequenceSource`; opened and closed here).

    tracker: a ready tracker (closed by the caller); otherwise one is built here: the legacy
    MediaPipe face mesh, or the Tasks FaceLandmarker when ``face_model`` is given.
    progress: draw a tqdm progress bar on stderr.
    Raises InputError (missing file), SourceError (unreadable video), DependencyError.
    """
    own = tracker is None
    source = path if isinstance(path, Source) else FileSource(path)
    label = source.name if isinstance(path, Source) else Path(path).name
    with source as src:
        if tracker is None:
            if face_model is not None:
                tracker = make_tracker("tasks", model_path=face_model, max_faces=max_faces)
            else:
                tracker = make_tracker("mediapipe", max_faces=max_faces)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=getattr(src, "n_frames", None) or None,
                unit="frame",
                file=sys.stderr,
                desc=label,
                mininterval=0.5,
                leave=False,
            )
        chooser = PrimaryTrack()
        lms: list[np.ndarray] = []
        ids: list[int] = []
        pts: list[float] = []
        nan = np.full((N_LANDMARKS, 3), np.nan, np.float32)
        try:
            for frame in src:
                faces = tracker.process(frame.image, int(round(frame.pts_s * 1000)))
                face = chooser.push(faces, tracker.assigner.live_ids)
                lms.append(face.landmarks if face is not None else nan)
                ids.append(face.track_id if face is not None else -1)
                pts.append(frame.pts_s)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            if own:
                tracker.close()
        fps, size = src.fps, src.size
    t = len(lms)
    track_id = np.asarray(ids, dtype=np.int32).reshape(t)
    return LandmarkSeries(
        landmarks=np.stack(lms).astype(np.float32)
        if t
        else np.zeros((0, N_LANDMARKS, 3), np.float32),
        valid=track_id >= 0,
        fps=float(fps),
        image_size=(int(size[0]), int(size[1])),
        pts_s=np.asarray(pts, dtype=np.float64).reshape(t),
        track_id=track_id,
    )


def save_landmarks_npz(series: LandmarkSeries, out: str | Path) -> Path:
    """Write ``series`` in the landmark .npz format; create the parent folder if needed."""
    out = Path(out)
    if out.suffix != ".npz":
        raise InputError(f"output must end in .npz, got {out}")
    data = LandmarkArrays(series.landmarks, series.valid, series.fps, series.image_size,
                          series.pts_s, series.track_id)
    return write_landmark_file(out, data, compressed=True)


def load_landmarks_npz(path: str | Path) -> LandmarkSeries:
    """Read and check a landmark .npz; raise InputError if it is missing or malformed."""
    d = read_landmark_file(path)
    t = len(d.valid)
    pts = d.pts_s if d.pts_s is not None else np.arange(t) / max(d.fps, 1e-9)
    tid = d.track_id if d.track_id is not None else np.where(d.valid, 0, -1)
    return LandmarkSeries(
        landmarks=d.landmarks,
        valid=d.valid,
        fps=d.fps,
        image_size=d.image_size,
        pts_s=pts.astype(np.float64),
        track_id=tid.astype(np.int32),
    )
