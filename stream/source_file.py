"""Video file source decoded with PyAV.

``FileSource(path)`` yields every frame of the first video stream in presentation order as
(H, W, 3) uint8 RGB. With ``realtime=True`` it paces delivery to the file's timestamps, as a
camera would; otherwise it decodes as fast as it can. PyAV errors are translated where they
enter: a missing file is an :class:`~pfes.errors.InputError`, anything unreadable or corrupt a
:class:`~pfes.errors.SourceError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pfes.errors import DependencyError, InputError, SourceError
from stream.frames import Frame, Source

__all__ = ["FileSource", "import_av", "av_to_rgb"]

log = logging.getLogger(__name__)

# Colour conversion (swscale) threads. PyAV 18 defaults to 0 = one per CPU, which for a
# 640x360 frame on 2 cores costs 1.3 ms (quiet machine) to 6-7 ms (other jobs running)
# instead of about 0.13 ms with one thread; the pixels are identical (benchmarks/RESULTS.md,
# "Live pipeline").
CONVERT_THREADS = 1
# Decoder threading for files (PyAV thread_type / thread_count; None: FFmpeg's default).
DECODE_THREAD_TYPE: str | None = "AUTO"
DECODE_THREADS: int | None = None


def import_av() -> Any:
    """Import PyAV or raise DependencyError with an install hint."""
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a core dependency
        raise DependencyError("PyAV is required to decode video: pip install av") from e
    return av


def av_to_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV VideoFrame -> (H, W, 3) uint8 RGB, converted on one thread."""
    return frame.to_ndarray(format="rgb24", threads=CONVERT_THREADS)


class FileSource(Source):
    """Decode a video file frame by frame.

    path: video file (anything FFmpeg reads: mp4, mkv, avi, ...).
    realtime: if True, sleep so that frame k is delivered no earlier than its pts after the
        first frame (the file plays at its own frame rate); dropped stays 0 either way.
    name: stream name; defaults to the file stem.
    """

    def __init__(self, path: str | Path, realtime: bool = False, name: str | None = None):
        self.path = Path(path)
        self.realtime = bool(realtime)
        self.name = name or self.path.stem
        self.fps = 0.0
        self.size = (0, 0)
        self.dropped = 0
        self.n_frames = 0  # container's frame count if known, else 0
        self.decoded = 0  # frames decoded so far
        self._container: Any = None
        self._stream: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        if self._container is not None:
            return
        if not self.path.exists():
            raise InputError(f"video file not found: {self.path}")
        if not self.path.is_file():
            raise InputError(f"not a file: {self.path}")
        av = import_av()
        try:
            container = av.open(str(self.path), mode="r")
        except av.FFmpegError as e:
            raise SourceError(f"cannot read video {self.path}: {e}") from e
        except (OSError, ValueError) as e:
            raise SourceError(f"cannot read video {self.path}: {e}") from e
        if not container.streams.video:
            container.close()
            raise SourceError(f"no video stream in {self.path}")
        stream = container.streams.video[0]
        if DECODE_THREAD_TYPE is not None:
            stream.thread_type = DECODE_THREAD_TYPE
        if DECODE_THREADS is not None:
            stream.codec_context.thread_count = DECODE_THREADS
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else 30.0
        w = stream.codec_context.width
        h = stream.codec_context.height
        if not w or not h:
            container.close()
            raise SourceError(f"video stream in {self.path} has no frame size")
        self.size = (int(w), int(h))
        self.n_frames = int(stream.frames or 0)
        self._container, self._stream = container, stream
        log.debug("opened %s: %dx%d @ %.3f fps", self.path, w, h, self.fps)

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None
                self._stream = None

    # -- iteration -------------------------------------------------------------------------
    def frames(self) -> Iterator[Frame]:
        if self._container is None:
            self.open()
        av = import_av()
        container, stream = self._container, self._stream
        t0_wall: float | None = None
        t0_pts = 0.0
        index = 0
        last_pts = float("-inf")
        try:
            for vf in container.decode(stream):
                image = av_to_rgb(vf)
                pts = vf.time
                if pts is None or pts <= last_pts:
                    # missing or repeated timestamps: derive from the frame count
                    pts = max(index / self.fps, last_pts + 1e-6)
                pts = float(pts)
                last_pts = pts
                if self.realtime:
                    now = time.monotonic()
                    if t0_wall is None:
                        t0_wall, t0_pts = now, pts
                    wait = (t0_wall + (pts - t0_pts)) - now
                    if wait > 0:
                        time.sleep(wait)
                yield Frame(index=index, image=image, pts_s=pts, arrival_s=time.monotonic())
                index += 1
                self.decoded = index
        except av.FFmpegError as e:
            raise SourceError(f"error decoding {self.path} at frame {index}: {e}") from e
        # the whole file was read (a consumer that stopped early never gets here)
        if self.n_frames and index < self.n_frames:
            log.warning("%s: decoded %d of the %d frames the container lists: the file is "
                        "truncated or damaged", self.path, index, self.n_frames)

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r}, realtime={self.realtime})"
