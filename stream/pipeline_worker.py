"""Per-source worker thread of the live pipeline: decode, track faces, compute features.

One :class:`SourceWorker` per source runs in its own thread (MediaPipe releases the GIL while
it runs, so sources proceed in parallel). Per frame it produces one :class:`TickItem`: the
feature vector of every live face track, the tracks that ended, and the stage times. Items go
to the engine thread through a bounded queue:

* files processed as fast as possible (``lossless``) block when the queue is full, so no frame
  of a file is ever skipped;
* live sources (and files played in real time) never block: a full queue drops the item and
  counts it (``queue_dropped``), like the source itself drops stale frames.

Track lifetime: a track that has no face for more than ``max_missed_frames`` frames ends
(its features for the missed frames are pushed as invalid, as offline); ended tracks are
reported in the next item that gets through, so the engine can flush their open instances.

Gaps (live sources): when the source reports a loss (a :class:`~stream.source_live.Gap`) or
two frames arrive more than ``gap_s`` apart, every track of the source is cut there: a
:class:`GapItem` (never dropped) tells the engine to close their open instances as
*interrupted*, and the frames after the gap start new track state.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pfes.errors import PfesError
from stream.frames import Source
from stream.pipeline_metrics import StreamCounters

__all__ = ["TickItem", "EndItem", "GapItem", "SourceWorker", "openblas_threads", "set_openblas_threads"]

log = logging.getLogger(__name__)


def _openblas_libs() -> list[tuple[Any, Any]]:
    """(get, set) thread-count functions of every OpenBLAS loaded in this process (Linux)."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.lower() and "/" in ln})
    except OSError:  # not Linux: nothing to do
        return []
    out = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle, nothing re-initialised
        except OSError:
            continue
        for suffix in ("64_", ""):  # numpy's wheels ship ILP64 OpenBLAS with suffixed symbols
            get = getattr(lib, f"openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                out.append((get, put))
                break
    return out


def openblas_threads() -> list[int]:
    """Thread count of each OpenBLAS loaded in this process (numpy's; empty if none found)."""
    return [int(get()) for get, _ in _openblas_libs()]


def set_openblas_threads(n: int | list[int]) -> list[int]:
    """Set OpenBLAS threads (one count for all, or one per library as openblas_threads()
    returns them); returns the previous counts.

    The live pipeline runs numpy's engine backend with one BLAS thread: its products are tiny
    (one frame per track), and OpenBLAS's second thread competes with the face mesh for the
    cores (benchmarks/RESULTS.md: engine p50 3.8 -> 0.2 ms on 2 cores).
    """
    libs = _openblas_libs()
    counts = n if isinstance(n, list) else [int(n)] * len(libs)
    before = [int(get()) for get, _ in libs]
    for (_, put), c in zip(libs, counts, strict=False):
        put(ctypes.c_int(int(c)))
    return before


@dataclass
class TickItem:
    """One processed frame of one source.

    rows: (track_id, features (F,) float32, valid) per live track, sorted by track id.
    lost: tracks that ended before this frame. Times in ms.
    """

    source: int
    frame: int
    pts_s: float
    arrival_s: float
    rows: list[tuple[int, np.ndarray, bool]]
    lost: list[int]
    faces: int
    stages_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class EndItem:
    """The source ended (or failed: ``error``); all its tracks are to be flushed."""

    source: int
    error: PfesError | None = None


@dataclass
class GapItem:
    """The source lost its frames after ``frame``: ``cut`` tracks end there, interrupted
    (``lost`` tracks had ended normally before). arrival_s: monotonic time of the gap."""

    source: int
    frame: int
    arrival_s: float
    reason: str
    cut: list[int]
    lost: list[int]


class _Track:
    __slots__ = ("extractor", "missed")

    def __init__(self, extractor: Any):
        self.extractor = extractor
        self.missed = 0


class SourceWorker:
    """Drive one source: frames -> tracker -> per-track features -> queue.

    tracker_factory: called once in the worker thread, returns an object with
        ``process(image, timestamp_ms) -> list[TrackedFace]`` and ``close()``.
    feature_factory: ``fps -> extractor`` with ``push(landmarks | None) -> (feat, valid)``.
    pace: deliver a file at its frame rate (sleep to the pts) before processing it.
    """

    def __init__(
        self,
        index: int,
        source: Source,
        out: queue.Queue,
        counters: StreamCounters,
        tracker_factory: Callable[[Source], Any],
        feature_factory: Callable[[float], Any],
        stop: threading.Event,
        max_missed_frames: int = 10,
        lossless: bool = False,
        pace: bool = False,
        live: bool = False,
        gap_s: float = 1.0,
    ):
        self.index = index
        self.source = source
        self.out = out
        self.counters = counters
        self.tracker_factory = tracker_factory
        self.feature_factory = feature_factory
        self.stop = stop
        self.max_missed_frames = int(max_missed_frames)
        self.lossless = lossless
        self.pace = pace
        self.live = live  # read gaps from the source and from frame arrival times
        self.gap_s = float(gap_s)
        self._last_frame = -1
        self.thread = threading.Thread(target=self._run, name=f"src-{source.name}", daemon=True)
        self._tracks: dict[int, _Track] = {}
        self._pending_lost: list[int] = []

    def start(self) -> None:
        self.thread.start()

    # -- thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        error: PfesError | None = None
        tracker = None
        try:
            tracker = self.tracker_factory(self.source)
            self._loop(tracker)
        except PfesError as e:
            error = e
            log.warning("%s: %s", self.source.name, e)
        except Exception as e:  # a bug or an untranslated third-party error: report, end
            log.exception("%s: worker failed", self.source.name)
            error = PfesError(f"{self.source.name}: {type(e).__name__}: {e}")
        finally:
            if tracker is not None:
                try:
                    tracker.close()
                except Exception:  # pragma: no cover
                    log.debug("tracker close failed", exc_info=True)
            self._put(EndItem(self.index, error), block=True)

    def _loop(self, tracker: Any) -> None:
        src = self.source
        fps = src.fps if src.fps and src.fps > 0 else 30.0
        it: Any = src.frames(gaps=True) if self.live else iter(src)  # type: ignore[call-arg]
        t0_wall = t0_pts = None
        gap_s = max(self.gap_s, 5.0 / fps)
        last_arrival = None
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                return
            if not hasattr(frame, "image"):  # a source_live.Gap: the connection was lost
                self._cut(frame.reason, frame.at_s)
                last_arrival = None
                continue
            if self.live and last_arrival is not None and frame.arrival_s - last_arrival > gap_s:
                self._cut(f"no frame for {frame.arrival_s - last_arrival:.1f} s", frame.arrival_s)
            last_arrival = frame.arrival_s
            decode_ms = (time.perf_counter() - t) * 1000.0
            dec = getattr(src, "last_decode_s", None)
            if dec is not None:  # live sources decode in their reader thread
                decode_ms = dec * 1000.0
            if self.pace:
                now = time.monotonic()
                if t0_wall is None or t0_pts is None:
                    t0_wall, t0_pts = now, frame.pts_s
                wait = t0_wall + (frame.pts_s - t0_pts) - now
                if wait > 0 and self.stop.wait(wait):
                    return
                frame = dataclasses.replace(frame, arrival_s=time.monotonic())
            self.counters.source_dropped = int(getattr(src, "dropped", 0))

            t = time.perf_counter()
            faces = tracker.process(frame.image, int(round(frame.pts_s * 1000.0)))
            t_lm = time.perf_counter()
            rows: list[tuple[int, np.ndarray, bool]] = []
            seen = set()
            for f in faces:
                tr = self._tracks.get(f.track_id)
                if tr is None:
                    tr = self._tracks[f.track_id] = _Track(self.feature_factory(fps))
                tr.missed = 0
                feat, ok = tr.extractor.push(f.landmarks)
                rows.append((f.track_id, feat, ok))
                seen.add(f.track_id)
            for tid in sorted(set(self._tracks) - seen):
                tr = self._tracks[tid]
                tr.missed += 1
                if tr.missed > self.max_missed_frames:
                    del self._tracks[tid]
                    self._pending_lost.append(tid)
                    continue
                feat, ok = tr.extractor.push(None)
                rows.append((tid, feat, ok))
            rows.sort(key=lambda r: r[0])
            t_ft = time.perf_counter()
            self.counters.tracks = len(self._tracks)
            item = TickItem(
                source=self.index,
                frame=frame.index,
                pts_s=frame.pts_s,
                arrival_s=frame.arrival_s,
                rows=rows,
                lost=self._pending_lost,
                faces=len(faces),
                stages_ms={
                    "decode": decode_ms,
                    "landmarks": (t_lm - t) * 1000.0,
                    "features": (t_ft - t_lm) * 1000.0,
                },
            )
            if self._put(item, block=self.lossless):
                self._pending_lost = []
                self._last_frame = frame.index
            else:
                self.counters.queue_dropped += 1

    def _cut(self, reason: str, at_s: float) -> None:
        """A gap: end every track here (their open instances are interrupted)."""
        self.counters.gaps += 1
        if not self._tracks and not self._pending_lost:
            return
        log.info("%s: gap after frame %d (%s): closing %d track(s)", self.source.name,
                 self._last_frame, reason, len(self._tracks))
        item = GapItem(self.index, self._last_frame, at_s, reason, sorted(self._tracks),
                       self._pending_lost)
        self._tracks.clear()
        self._pending_lost = []
        self.counters.tracks = 0
        self._put(item, block=True)

    def _put(self, item: Any, block: bool) -> bool:
        if not block:
            try:
                self.out.put_nowait(item)
                return True
            except queue.Full:
                return False
        while True:
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self.stop.is_set() and not isinstance(item, (EndItem, GapItem)):
                    return False
