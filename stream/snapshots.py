"""Event snapshots: the apex frame and a face crop of each event, as JPEG, in a bounded folder.

How it hooks into the pipeline without touching its threads:

* :meth:`Snapshots.wrap_tracker` wraps a stream's face tracker; every frame the tracker sees
  goes into that stream's :class:`FrameRing` (a reference to the decoded image, no copy; frames
  wider than ``max_width`` are stored downscaled) with the face boxes of its tracks, keyed by
  the frame's timestamp in ms (the same ``pts`` the event's ``apex_s`` comes from);
* :meth:`Snapshots.annotate` is the pipeline's ``annotate`` hook: it finds the apex frame in
  the ring, names the two files, returns the event with ``snapshot = {"frame": path, "face":
  path}`` and hands the encoding to a writer thread, so the event is published without
  waiting for JPEG encoding. A file may appear a few milliseconds after its event.

Files are ``<stream>-<run>-<seq>-frame.jpg`` and ``-face.jpg`` (``run``: the start time of
the process, so that a new run never overwrites an old one); with ``clips`` also
``-clip.mp4``, H.264 (PyAV) from ``clip_pad_s`` before the onset to as far after the offset as
the ring holds when the event closes. The folder is bounded by ``max_bytes``: after each
write the oldest ``*.jpg`` / ``*.mp4`` files (by modification time, earlier runs' files
included) are deleted until the total fits.

An apex older than the ring (``buffer_s``) gets no snapshot (counted in ``missed``).
Memory: ``buffer_s * fps`` frames per stream, e.g. 5 s of 640x360 at 30 fps = 104 MB.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pfes.errors import InputError
from stream.events import Event

__all__ = ["SnapshotConfig", "FrameRing", "Snapshots", "face_crop"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotConfig:
    """folder; max_bytes: size limit of the folder's JPEGs; buffer_s: seconds of frames kept
    per stream; max_width: wider frames are stored downscaled; face_margin: crop margin as a
    fraction of the face box; quality: JPEG quality 1..100."""

    folder: Path
    max_bytes: int = 500 * 1024 * 1024
    buffer_s: float = 5.0
    max_width: int = 1280
    face_margin: float = 0.3
    quality: int = 90
    queue_items: int = 64
    clips: bool = False
    clip_pad_s: float = 0.5

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise InputError("--snapshots-max-mb must be > 0")
        if not self.buffer_s > 0 or self.max_width < 16 or not 1 <= self.quality <= 100:
            raise InputError("snapshot settings: buffer_s > 0, max_width >= 16, quality 1..100")


class FrameRing:
    """Recent frames of one stream: (timestamp_ms, image, {track_id: bbox}); thread-safe."""

    def __init__(self, buffer_s: float):
        self.buffer_ms = float(buffer_s) * 1000.0
        self._items: deque[tuple[int, np.ndarray, dict[int, tuple[float, ...]]]] = deque()
        self._lock = threading.Lock()

    def push(self, ts_ms: int, image: np.ndarray, boxes: dict[int, tuple[float, ...]]) -> None:
        with self._lock:
            if self._items and ts_ms < self._items[-1][0] - 1000:
                self._items.clear()  # time went back: a new run of the source
            self._items.append((int(ts_ms), image, boxes))
            while self._items and self._items[0][0] < ts_ms - self.buffer_ms:
                self._items.popleft()

    def find(self, ts_ms: float, tolerance_ms: float = 50.0):
        """The item nearest ``ts_ms`` (within ``tolerance_ms``), or None."""
        with self._lock:
            best = None
            for it in reversed(self._items):
                d = abs(it[0] - ts_ms)
                if best is None or d < best[0]:
                    best = (d, it)
                if it[0] < ts_ms - tolerance_ms:
                    break
        return best[1] if best is not None and best[0] <= tolerance_ms else None

    def between(self, t0_ms: float, t1_ms: float) -> list[tuple[int, np.ndarray]]:
        """(timestamp_ms, image) of the frames from ``t0_ms`` to ``t1_ms``, in order."""
        with self._lock:
            return [(ts, im) for ts, im, _ in self._items if t0_ms <= ts <= t1_ms]

    def __len__(self) -> int:
        return len(self._items)


def face_crop(image: np.ndarray, bbox: tuple[float, ...], margin: float) -> np.ndarray:
    """The face box widened by ``margin`` of its size on each side, clipped to the image."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = bbox[:4]
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    a = int(min(w - 1, max(0, np.floor(x0 - mx))))
    b = int(min(h - 1, max(0, np.floor(y0 - my))))
    c, d = int(min(w, np.ceil(x1 + mx))), int(min(h, np.ceil(y1 + my)))
    return image[b : max(d, b + 1), a : max(c, a + 1)]


class _RecordingTracker:
    """A face tracker that also puts each frame into a FrameRing (everything else delegated)."""

    def __init__(self, inner: Any, ring: FrameRing, max_width: int):
        self._inner = inner
        self._ring = ring
        self._max_width = int(max_width)

    def process(self, image: np.ndarray, timestamp_ms: int) -> list:
        faces = self._inner.process(image, timestamp_ms)
        boxes = {f.track_id: tuple(f.bbox) for f in faces}
        keep = image
        if image.shape[1] > self._max_width:
            import cv2

            s = self._max_width / image.shape[1]
            keep = cv2.resize(
                image,
                (self._max_width, max(1, round(image.shape[0] * s))),
                interpolation=cv2.INTER_AREA,
            )
            boxes = {k: tuple(v * s for v in b) for k, b in boxes.items()}
        self._ring.push(timestamp_ms, keep, boxes)
        return faces

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Snapshots:
    """Apex frame + face crop per event (see module docstring). A context manager;
    :meth:`close` waits for pending writes."""

    def __init__(self, cfg: SnapshotConfig):
        self.cfg = cfg
        self.folder = Path(cfg.folder).resolve()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--snapshots {cfg.folder}: {e.strerror or e}") from e
        if not os.access(self.folder, os.W_OK):
            raise InputError(f"--snapshots {cfg.folder}: not writable")
        self.run = time.strftime("%Y%m%d-%H%M%S")
        self._rings: dict[str, FrameRing] = {}
        self._files: deque[tuple[Path, int]] = deque()
        old = [*self.folder.glob("*.jpg"), *self.folder.glob("*.mp4")]
        for p in sorted(old, key=lambda p: p.stat().st_mtime):
            self._files.append((p, p.stat().st_size))
        self._bytes = sum(s for _, s in self._files)
        self.written = 0
        self.missed = 0
        self.deleted = 0
        self._jobs: queue.Queue = queue.Queue(maxsize=cfg.queue_items)
        self._thread = threading.Thread(target=self._writer, name="snapshots", daemon=True)
        self._thread.start()
        self._evict()

    # -- hooks -----------------------------------------------------------------------------
    def wrap_tracker(self, stream: str, tracker: Any) -> Any:
        """The tracker of ``stream``, recording its frames (call once per stream)."""
        ring = self._rings[stream] = FrameRing(self.cfg.buffer_s)
        return _RecordingTracker(tracker, ring, self.cfg.max_width)

    def annotate(self, ev: Event) -> Event:
        """``ev`` with its snapshot paths, the files queued for writing; unchanged if the apex
        frame is no longer (or not) in the ring."""
        ring = self._rings.get(ev.stream)
        item = ring.find(ev.apex_s * 1000.0) if ring is not None else None
        if ring is None or item is None:
            self.missed += 1
            return ev
        _, image, boxes = item
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', ev.stream)}-{self.run}-{ev.seq:06d}"
        paths = {"frame": str(self.folder / f"{stem}-frame.jpg")}
        bbox = boxes.get(ev.track)
        if bbox is not None:
            paths["face"] = str(self.folder / f"{stem}-face.jpg")
        clip: list[tuple[int, np.ndarray]] = []
        if self.cfg.clips:
            pad = self.cfg.clip_pad_s * 1000.0
            clip = ring.between(ev.onset_s * 1000.0 - pad, ev.offset_s * 1000.0 + pad)
            if len(clip) >= 2:
                paths["clip"] = str(self.folder / f"{stem}-clip.mp4")
        try:
            self._jobs.put_nowait((image, bbox, paths, clip))
        except queue.Full:  # the disk cannot keep up: no snapshot rather than a stalled pipeline
            self.missed += 1
            return ev
        return dataclasses.replace(ev, snapshot=paths)

    # -- writer thread ---------------------------------------------------------------------
    def _writer(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            image, bbox, paths, clip = job
            try:
                self._write(Path(paths["frame"]), image)
                if bbox is not None:
                    self._write(Path(paths["face"]), face_crop(image, bbox, self.cfg.face_margin))
                if "clip" in paths:
                    self._write_clip(Path(paths["clip"]), clip)
                self._evict()
            except Exception:  # a full disk must not end the run
                log.exception("snapshot write failed")

    def _write(self, path: Path, rgb: np.ndarray) -> None:
        import cv2

        ok, buf = cv2.imencode(
            ".jpg",
            np.ascontiguousarray(rgb[:, :, ::-1]),
            [cv2.IMWRITE_JPEG_QUALITY, self.cfg.quality],
        )
        if not ok:
            raise OSError(f"JPEG encoding failed for {path.name}")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)  # readers never see half a file
        self._files.append((path, len(buf)))
        self._bytes += len(buf)
        self.written += 1

    def _write_clip(self, path: Path, frames: list[tuple[int, np.ndarray]]) -> None:
        """H.264 in mp4 (PyAV, libx264, one thread), frame times from their timestamps."""
        from fractions import Fraction

        import av

        h, w = frames[0][1].shape[:2]
        h, w = h - h % 2, w - w % 2  # yuv420p needs even sizes
        tmp = path.with_name(path.name + ".tmp")
        gaps = np.diff([ts for ts, _ in frames])
        rate = Fraction(round(1000.0 / max(1.0, float(np.median(gaps))) * 1000), 1000)
        with av.open(str(tmp), "w", format="mp4") as out:
            st = out.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "26"})
            st.width, st.height, st.pix_fmt = w, h, "yuv420p"
            st.codec_context.time_base = Fraction(1, 1000)
            st.thread_count = 1
            t0 = frames[0][0]
            last = -1
            for ts, im in frames:
                if ts - t0 <= last or im.shape[0] < h or im.shape[1] < w:
                    continue  # a repeated timestamp or a size change: skip the frame
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(im[:h, :w]), format="rgb24")
                vf.pts, vf.time_base = ts - t0, Fraction(1, 1000)
                last = ts - t0
                for pk in st.encode(vf):
                    out.mux(pk)
            for pk in st.encode():
                out.mux(pk)
        os.replace(tmp, path)
        size = path.stat().st_size
        self._files.append((path, size))
        self._bytes += size
        self.written += 1

    def _evict(self) -> None:
        while self._bytes > self.cfg.max_bytes and self._files:
            p, size = self._files.popleft()
            self._bytes -= size
            try:
                p.unlink()
                self.deleted += 1
            except FileNotFoundError:
                pass

    @property
    def bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        """Write what is queued, then stop the writer. Safe to call twice."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def __enter__(self) -> Snapshots:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
