"""MediaPipe face-mesh backends for :class:`stream.tracker.FaceTracker`.

- :class:`MediaPipeFaceMesh`: the legacy ``mp.solutions.face_mesh`` solution (mediapipe
  0.10.21 ships its models inside the wheel, so it works offline). Default.
- :class:`TasksFaceLandmarker`: the Tasks API ``FaceLandmarker`` in VIDEO running mode, for a
  user-supplied ``face_landmarker.task`` (the only option on mediapipe >= 0.10.30).

Both return 478-point meshes (468 + 10 iris points) in pixels: x * W, y * H, z * W.
One instance per stream, one thread per instance.

Hot path (legacy backend): instead of ``FaceMesh.process`` (which copies the frame, builds a
namedtuple class and parses every landmark protobuf per call, about 0.5 ms per frame), frames
go straight into the solution's graph as a read-only view (MediaPipe's zero-copy mode) and the
serialized landmark lists are decoded with numpy (:func:`_parse_landmark_list`). The results
are bit-identical; if this mediapipe lacks the internals used, or a message has an unexpected
layout, the public path is used instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pfes.errors import DependencyError, InputError, ModelError
from stream.tracker import N_LANDMARKS, FaceTracker

__all__ = ["MediaPipeFaceMesh", "TasksFaceLandmarker", "import_mediapipe"]

log = logging.getLogger(__name__)

_QUIET_FRAMES = 300  # stop hiding native stderr after this many frames even without a face

_INSTALL_HINT = (
    "MediaPipe is required for face tracking: pip install --no-deps mediapipe==0.10.21 "
    "(Python <= 3.12; see scripts/install.sh)"
)


def import_mediapipe() -> Any:
    """Import mediapipe with its native logging turned down, or raise DependencyError."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import mediapipe as mp
    except ImportError as e:
        raise DependencyError(f"{_INSTALL_HINT} ({e})") from e
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with mediapipe
        pass
    return mp


@contextlib.contextmanager
def _quiet_native_stderr(enabled: bool) -> Iterator[None]:
    """Send fd 2 to /dev/null for a moment.

    MediaPipe's C++ code prints absl/TFLite warnings (XNNPACK delegate, feedback tensors)
    straight to fd 2 while a graph starts and the first time the landmark model runs, before
    any log level can be set. Trackers use this only around graph creation (with a blank
    warm-up frame, so model loading finishes inside the window) and around ``process`` calls
    until the first face is found (at most ``_QUIET_FRAMES`` frames); anything else written to
    stderr in those windows, from any thread, is lost too, so ``quiet=False`` turns it off.
    """
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _scale(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 3) float32 normalised -> pixels in place (z on the x scale); checks N == 478."""
    if arr.shape != (N_LANDMARKS, 3):
        raise ModelError(
            f"face model returned {arr.shape[0]} landmarks, expected {N_LANDMARKS} "
            "(enable iris refinement / use a face_landmarker.task with 478 points)"
        )
    arr[:, 0] *= width
    arr[:, 1] *= height
    arr[:, 2] *= width
    return arr


def _to_pixels(points: Any, width: int, height: int) -> np.ndarray:
    """MediaPipe normalised landmarks -> (478, 3) float32 pixels (z on the x scale)."""
    return _scale(np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32), width, height)


# A serialized NormalizedLandmarkList as the face mesh writes it: per landmark the 17 bytes
# 0x0a 0x0f (field 1, length 15), 0x0d x(f32 LE), 0x15 y, 0x1d z (no visibility/presence).
_LM_BYTES = 17
_LM_TAGS = ((0, 0x0A), (1, 0x0F), (2, 0x0D), (7, 0x15), (12, 0x1D))
_LM_FLOAT_COLS = np.array([3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16], dtype=np.intp)


def _parse_landmark_list(data: bytes) -> np.ndarray | None:
    """Serialized ``NormalizedLandmarkList`` -> (N, 3) float32 (x, y, z), normalised.

    Vectorised decoding of the one layout the face mesh emits (x, y, z per landmark, nothing
    else); returns None for any other layout, for the caller to parse it as a protobuf.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0 or raw.size % _LM_BYTES:
        return None
    raw = raw.reshape(-1, _LM_BYTES)
    for col, tag in _LM_TAGS:
        if not (raw[:, col] == tag).all():
            return None
    return raw[:, _LM_FLOAT_COLS].copy().view("<f4").astype(np.float32, copy=False)


class _DirectGraph:
    """Feed frames straight into a legacy ``SolutionBase`` graph (mediapipe 0.10.x).

    Does what ``FaceMesh.process`` does for one image input and the ``multi_face_landmarks``
    output, minus its per-call overhead. ``build`` returns None when the internals differ.
    """

    def __init__(self, solution: Any, packet_creator: Any, image_format: Any, getter: Any):
        self._sol = solution
        self._create = packet_creator.create_image_frame
        self._format = image_format
        self._serialized = getter._get_serialized_proto_list
        self._list_class: Any = None

    @classmethod
    def build(cls, solution: Any) -> _DirectGraph | None:
        try:
            from mediapipe.python import packet_creator
            from mediapipe.python._framework_bindings import _packet_getter, image_frame
        except ImportError:
            return None
        needed = (
            "_graph",
            "_graph_outputs",
            "_simulated_timestamp",
            "_input_stream_type_info",
            "_output_stream_type_info",
        )
        if not all(hasattr(solution, a) for a in needed):
            return None
        if list(solution._input_stream_type_info) != ["image"]:
            return None
        if "multi_face_landmarks" not in solution._output_stream_type_info:
            return None
        if not hasattr(_packet_getter, "_get_serialized_proto_list"):
            return None
        return cls(solution, packet_creator, image_frame.ImageFormat.SRGB, _packet_getter)

    def process(self, image: np.ndarray) -> list[bytes]:
        """One C-contiguous (H, W, 3) uint8 RGB frame -> serialized landmark list per face."""
        sol = self._sol
        view = image.view()
        view.flags.writeable = False  # MediaPipe then references the pixels instead of copying
        sol._graph_outputs.clear()
        sol._simulated_timestamp += 33333  # as SolutionBase.process: a simulated 30 fps clock
        packet = self._create(view, image_format=self._format).at(sol._simulated_timestamp)
        sol._graph.add_packet_to_input_stream(stream="image", packet=packet)
        sol._graph.wait_until_idle()
        out = sol._graph_outputs.get("multi_face_landmarks")
        if out is None or out.is_empty():
            return []
        return list(self._serialized(out))

    def to_pixels(self, data: bytes, width: int, height: int) -> np.ndarray:
        arr = _parse_landmark_list(data)
        if arr is None:  # another layout (e.g. visibility set): the protobuf way
            if self._list_class is None:
                from mediapipe.framework.formats import landmark_pb2

                self._list_class = landmark_pb2.NormalizedLandmarkList
            return _to_pixels(self._list_class.FromString(data).landmark, width, height)
        return _scale(arr, width, height)


class MediaPipeFaceMesh(FaceTracker):
    """Legacy MediaPipe face mesh (``refine_landmarks=True``, tracking mode).

    max_faces: faces per frame. min_detection_confidence / min_tracking_confidence: as in
    MediaPipe. quiet: hide MediaPipe's native start-up chatter on stderr. direct: feed the
    graph directly (same results, less per-frame overhead; False: ``FaceMesh.process``).
    """

    name = "mediapipe"

    def __init__(
        self,
        max_faces: int = 1,
        max_missed_frames: int = 10,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        quiet: bool = True,
        direct: bool = True,
    ):
        super().__init__(max_faces=max_faces, max_missed_frames=max_missed_frames)
        mp = import_mediapipe()
        self._quiet_left = _QUIET_FRAMES if quiet else 0
        with _quiet_native_stderr(quiet):
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False,
                refine_landmarks=True,
                max_num_faces=self.max_faces,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
            # model loading is asynchronous; a blank frame waits for it inside the window
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._direct = _DirectGraph.build(self._mesh) if direct else None
        if direct and self._direct is None:
            log.debug("mediapipe internals differ: using FaceMesh.process")

    def _detect(self, image: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        h, w = image.shape[:2]
        direct = self._direct
        if direct is not None:
            if self._quiet_left > 0:
                with _quiet_native_stderr(True):
                    found = direct.process(image)
            else:
                found = direct.process(image)
            self._quiet_left = 0 if found else max(0, self._quiet_left - 1)
            return [direct.to_pixels(b, w, h) for b in found]
        with _quiet_native_stderr(self._quiet_left > 0):
            result = self._mesh.process(image)
        faces = result.multi_face_landmarks or []
        self._quiet_left = 0 if faces else max(0, self._quiet_left - 1)
        return [_to_pixels(f.landmark, w, h) for f in faces]

    def close(self) -> None:
        if not self._closed and getattr(self, "_mesh", None) is not None:
            self._mesh.close()
        super().close()


class TasksFaceLandmarker(FaceTracker):
    """MediaPipe Tasks ``FaceLandmarker`` in VIDEO mode with a ``face_landmarker.task`` file.

    Timestamps passed to MediaPipe are made strictly increasing (a repeated or backwards
    source timestamp becomes previous + 1 ms).
    """

    name = "tasks"

    def __init__(
        self,
        model_path: str | Path | None = None,
        max_faces: int = 1,
        max_missed_frames: int = 10,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        quiet: bool = True,
    ):
        super().__init__(max_faces=max_faces, max_missed_frames=max_missed_frames)
        if model_path is None:
            raise InputError("the tasks tracker needs a face_landmarker.task (--face-model PATH)")
        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"face model not found: {path}")
        mp = import_mediapipe()
        self._mp = mp
        self._quiet_left = _QUIET_FRAMES if quiet else 0
        self._last_ts = -1
        vision = mp.tasks.vision
        options = vision.FaceLandmarkerOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=self.max_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        try:
            with _quiet_native_stderr(quiet):
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as e:
            raise ModelError(f"cannot load face model {path}: {e}") from e

    def _next_timestamp(self, timestamp_ms: int) -> int:
        ts = max(int(timestamp_ms), self._last_ts + 1)
        self._last_ts = ts
        return ts

    def _detect(self, image: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        h, w = image.shape[:2]
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=image)
        ts = self._next_timestamp(timestamp_ms)
        try:
            with _quiet_native_stderr(self._quiet_left > 0):
                result = self._landmarker.detect_for_video(mp_image, ts)
        except RuntimeError as e:  # graph failures mean the .task does not fit this API
            raise ModelError(f"face model failed on a frame: {str(e).splitlines()[0]}") from e
        faces = result.face_landmarks or []
        self._quiet_left = 0 if faces else max(0, self._quiet_left - 1)
        return [_to_pixels(f, w, h) for f in faces]

    def close(self) -> None:
        if not self._closed and getattr(self, "_landmarker", None) is not None:
            self._landmarker.close()
        super().close()
