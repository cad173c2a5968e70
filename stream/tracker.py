"""Face tracking interface: per-frame face meshes with stable track ids.

A :class:`FaceTracker` turns one RGB frame into a list of :class:`TrackedFace`, each with the
478-point MediaPipe mesh (with iris refinement) in pixels and a track id that stays the same
while the face stays in view. Ids come from :class:`TrackAssigner`, which associates the
detections of consecutive frames greedily on box overlap (IoU) and centre distance; a track
that misses more than ``max_missed_frames`` frames ends, and a face that comes back later gets
a new id. Ids are never reused within one tracker.

Backends are chosen by name with :func:`make_tracker` (``"mediapipe"``: legacy face mesh
solution, bundled models, the default; ``"tasks"``: MediaPipe Tasks FaceLandmarker with a
user-supplied ``face_landmarker.task``). They live in ``stream/tracker_mediapipe.py``.

Threading: one tracker per stream, used from one thread only. MediaPipe graphs keep temporal
state between calls, so sharing a tracker between streams mixes their faces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pfes.errors import InputError

__all__ = [
    "N_LANDMARKS",
    "TrackedFace",
    "FaceTracker",
    "TrackAssigner",
    "make_tracker",
    "TRACKERS",
    "bbox_of",
    "check_image",
]

N_LANDMARKS = 478


@dataclass(frozen=True)
class TrackedFace:
    """One face in one frame.

    track_id: stable id within the stream (0, 1, 2, ... never reused).
    landmarks: (478, 3) float32 pixels of the source image: x, y, and z on the x scale
        (z_px = z_normalised * W; smaller z is nearer the camera).
    bbox: (x0, y0, x1, y1) float pixels, the landmarks' extent.
    is_new: True on the first frame of this track.
    """

    track_id: int
    landmarks: np.ndarray
    bbox: tuple[float, float, float, float]
    is_new: bool


def bbox_of(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of (N, >=2) pixel landmarks."""
    x0, y0 = np.min(landmarks[:, :2], axis=0)
    x1, y1 = np.max(landmarks[:, :2], axis=0)
    return (float(x0), float(y0), float(x1), float(y1))


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an (H, W, 3) uint8 RGB frame; return it C-contiguous."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise InputError(f"tracker expects an (H, W, 3) RGB image, got shape {shape}")
    if image.dtype != np.uint8:
        raise InputError(f"tracker expects uint8 RGB, got {image.dtype}")
    return np.ascontiguousarray(image)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    track_id: int
    bbox: tuple[float, float, float, float]
    missed_frames: int = 0


@dataclass
class TrackAssigner:
    """Give detections stable ids by greedy association with the previous frame's tracks.

    A detection matches a live track when their IoU >= ``min_iou`` or, for fast motion, when
    the centre distance is below ``max_centre_dist`` x the track's box size and the sizes
    differ by less than a factor ``max_size_ratio``. Pairs are taken best first (highest IoU,
    then nearest centre). Unmatched tracks count a miss; after more than
    ``max_missed_frames`` consecutive misses they end. Unmatched detections start new tracks.
    """

    max_missed_frames: int = 10
    min_iou: float = 0.3
    max_centre_dist: float = 0.5
    max_size_ratio: float = 1.6
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 0

    def reset(self) -> None:
        """End every track; ids keep counting up (never reused)."""
        self._tracks = []

    @property
    def live_ids(self) -> list[int]:
        return [t.track_id for t in self._tracks]

    def _score(self, t: _Track, b: tuple[float, float, float, float]) -> float | None:
        """Association score (higher is better) or None when the pair must not match."""
        iou = _iou(t.bbox, b)
        if iou >= self.min_iou:
            return 1.0 + iou
        tw, th = t.bbox[2] - t.bbox[0], t.bbox[3] - t.bbox[1]
        bw, bh = b[2] - b[0], b[3] - b[1]
        size_t, size_b = (
            max(np.sqrt(max(tw * th, 0.0)), 1e-6),
            max(np.sqrt(max(bw * bh, 0.0)), 1e-6),
        )
        if max(size_t, size_b) / min(size_t, size_b) > self.max_size_ratio:
            return None
        dx = (t.bbox[0] + t.bbox[2] - b[0] - b[2]) / 2.0
        dy = (t.bbox[1] + t.bbox[3] - b[1] - b[3]) / 2.0
        dist = float(np.hypot(dx, dy)) / size_t
        if dist > self.max_centre_dist:
            return None
        return 1.0 - dist / self.max_centre_dist  # in [0, 1], below every IoU match

    def assign(self, boxes: list[tuple[float, float, float, float]]) -> list[tuple[int, bool]]:
        """Return (track_id, is_new) for each box, in the order given."""
        pairs = []
        for ti, t in enumerate(self._tracks):
            for di, b in enumerate(boxes):
                s = self._score(t, b)
                if s is not None:
                    pairs.append((s, ti, di))
        pairs.sort(key=lambda p: -p[0])
        det_track: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_tracks or di in det_track:
                continue
            det_track[di] = ti
            used_tracks.add(ti)
        out: list[tuple[int, bool]] = []
        for di, b in enumerate(boxes):
            if di in det_track:
                t = self._tracks[det_track[di]]
                t.bbox, t.missed_frames = b, 0
                out.append((t.track_id, False))
            else:
                t = _Track(self._next_id, b)
                self._next_id += 1
                self._tracks.append(t)
                used_tracks.add(len(self._tracks) - 1)
                out.append((t.track_id, True))
        kept = []
        for ti, t in enumerate(self._tracks):
            if ti not in used_tracks:
                t.missed_frames += 1
            if t.missed_frames <= self.max_missed_frames:
                kept.append(t)
        self._tracks = kept
        return out


class FaceTracker:
    """Base class: subclasses implement :meth:`_detect` (one frame -> pixel meshes).

    max_faces: at most this many faces per frame.
    max_missed_frames: a track ends after this many consecutive frames without its face.
    """

    name = "base"

    def __init__(self, max_faces: int = 1, max_missed_frames: int = 10):
        if max_faces < 1:
            raise InputError(f"max_faces must be >= 1, got {max_faces}")
        self.max_faces = int(max_faces)
        self.assigner = TrackAssigner(max_missed_frames=max_missed_frames)
        self._closed = False

    def _detect(self, image: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        """Return a list of (478, 3) float32 pixel meshes for one frame."""
        raise NotImplementedError

    def process(self, image: np.ndarray, timestamp_ms: int) -> list[TrackedFace]:
        """Track faces in one frame.

        image: (H, W, 3) uint8 RGB. timestamp_ms: source time in milliseconds (backends that
        need strictly increasing timestamps make them so).
        Returns one TrackedFace per face found, sorted by track id.
        """
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        image = check_image(image)
        meshes = self._detect(image, int(timestamp_ms))[: self.max_faces]
        boxes = [bbox_of(m) for m in meshes]
        ids = self.assigner.assign(boxes)
        faces = [
            TrackedFace(track_id=tid, landmarks=m, bbox=b, is_new=new)
            for m, b, (tid, new) in zip(meshes, boxes, ids, strict=True)
        ]
        faces.sort(key=lambda f: f.track_id)
        return faces

    def reset(self) -> None:
        """Forget all tracks (new ids follow); the backend keeps its models loaded."""
        self.assigner.reset()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_mediapipe(**kw: Any) -> FaceTracker:
    from stream.tracker_mediapipe import MediaPipeFaceMesh

    return MediaPipeFaceMesh(**kw)


def _make_tasks(**kw: Any) -> FaceTracker:
    from stream.tracker_mediapipe import TasksFaceLandmarker

    return TasksFaceLandmarker(**kw)


TRACKERS: dict[str, Callable[..., FaceTracker]] = {
    "mediapipe": _make_mediapipe,
    "tasks": _make_tasks,
}


def make_tracker(kind: str = "mediapipe", **kw: Any) -> FaceTracker:
    """Build a tracker by name: ``"mediapipe"`` (default) or ``"tasks"`` (needs model_path).

    Keyword arguments go to the backend (max_faces, max_missed_frames, model_path, ...).
    """
    try:
        factory = TRACKERS[kind]
    except KeyError:
        raise InputError(f"unknown tracker {kind!r}; choose from {sorted(TRACKERS)}") from None
    return factory(**kw)
