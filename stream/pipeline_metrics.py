"""One metrics object for the live pipeline: fps, drops, faces and per-stage latency.

Stages (milliseconds per frame): ``decode`` (source decode + colour conversion),
``landmarks`` (face tracker), ``features`` (alignment + feature vector, all faces of the
frame), ``engine`` (the batched network step of the tick the frame was in), ``detector``
(peak detector pushes of the frame's tracks) and ``publish`` (events and intensity messages
of the frame). ``compute`` is their sum per frame. ``event_latency`` is the ``latency_ms`` of
each event (closing frame arrival to publish).

Writers are the source threads and the engine thread; appends to a deque are atomic under
the GIL, so no lock is needed on the hot path. Heartbeats read a rolling window of recent
frames. The end-of-run summary covers every sample of the run in constant memory: each stage
(and the event latency) feeds a DDSketch quantile sketch (``ddsketch``, relative error
``relative_accuracy``, at most ``bin_limit`` bins), so a process that runs for weeks keeps the
same few kilobytes per stage instead of a growing list of samples.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from ddsketch import LogCollapsingLowestDenseDDSketch

from stream.quality import is_noisy

__all__ = ["STAGES", "Metrics", "StreamCounters", "percentiles", "sketch_percentiles"]

STAGES = ("decode", "landmarks", "features", "engine", "detector", "publish")


def percentiles(values, qs=(50, 90, 99)) -> dict[str, float]:
    """{"p50": .., "p90": .., "p99": .., "n": ..} of a sequence (empty: zeros)."""
    arr = np.asarray(list(values), dtype=np.float64)
    out = {f"p{q}": (float(np.percentile(arr, q)) if arr.size else 0.0) for q in qs}
    out["n"] = int(arr.size)
    return out


def sketch_percentiles(sketch: LogCollapsingLowestDenseDDSketch, qs=(50, 90, 99)) -> dict[str, float]:
    """Like :func:`percentiles`, from a quantile sketch (empty: zeros)."""
    n = int(sketch.count)
    out = {f"p{q}": (float(sketch.get_quantile_value(q / 100.0) or 0.0) if n else 0.0) for q in qs}
    out["n"] = n
    return out


@dataclass
class StreamCounters:
    """Counters of one source. dropped = source drops (newest-frame policy) + queue drops."""

    frames: int = 0
    frames_with_face: int = 0
    faces: int = 0  # faces in the latest frame
    tracks: int = 0  # live tracks
    source_dropped: int = 0
    queue_dropped: int = 0
    events: int = 0
    gaps: int = 0  # live source losses and frame gaps (open instances cut there)
    interrupted: int = 0  # events closed early by a gap
    tracking_noise: float | None = None  # latest stream.quality.brow_jitter of its tracks
    ended: bool = False
    error: str = ""
    _times: deque = field(default_factory=lambda: deque(maxlen=256))

    @property
    def dropped(self) -> int:
        return self.source_dropped + self.queue_dropped

    def fps(self, now: float | None = None, window_s: float = 2.0) -> float:
        """Processed frames per second over the last ``window_s`` seconds."""
        now = time.monotonic() if now is None else now
        ts = [t for t in list(self._times) if now - t <= window_s]
        if len(ts) < 2:
            return 0.0
        span = ts[-1] - ts[0]
        return (len(ts) - 1) / span if span > 0 else 0.0


class Metrics:
    """Per-stage latency (ms; recent window + whole-run sketch) and per-stream counters.

    relative_accuracy: relative error of the whole-run percentiles (0.01: p99 of 40 ms is
        reported within 0.4 ms). bin_limit: most bins per sketch (memory bound).
    """

    def __init__(self, window: int = 300, relative_accuracy: float = 0.01, bin_limit: int = 2048):
        self.window = int(window)
        self._recent: dict[str, deque[float]] = {
            s: deque(maxlen=self.window) for s in (*STAGES, "compute")}

        def sketch() -> LogCollapsingLowestDenseDDSketch:
            return LogCollapsingLowestDenseDDSketch(relative_accuracy=relative_accuracy,
                                                    bin_limit=bin_limit)

        self._all = {s: sketch() for s in (*STAGES, "compute")}
        self._latency = sketch()
        self.streams: dict[str, StreamCounters] = {}
        self.started = time.monotonic()

    def stream(self, name: str) -> StreamCounters:
        c = self.streams.get(name)
        if c is None:
            c = self.streams[name] = StreamCounters()
        return c

    def record(self, stage: str, ms: float) -> None:
        self._recent[stage].append(ms)
        self._all[stage].add(max(0.0, ms))

    def record_frame(self, name: str, stages_ms: dict[str, float], faces: int) -> None:
        """All stages of one processed frame (engine thread, once the frame is done)."""
        total = 0.0
        for s, ms in stages_ms.items():
            self.record(s, ms)
            total += ms
        self.record("compute", total)
        c = self.stream(name)
        c.frames += 1
        c.faces = faces
        if faces:
            c.frames_with_face += 1
        c._times.append(time.monotonic())

    def record_event_latency(self, ms: float) -> None:
        self._latency.add(max(0.0, ms))

    def stage_summary(self, recent: bool = False) -> dict[str, dict[str, float]]:
        if recent:
            return {s: percentiles(v) for s, v in self._recent.items()}
        return {s: sketch_percentiles(v) for s, v in self._all.items()}

    def latency_summary(self) -> dict[str, float]:
        return sketch_percentiles(self._latency)

    def status(self, name: str) -> dict:
        """Heartbeat body for one stream (without schema/stream/time, added by the caller)."""
        c = self.stream(name)
        lat = {
            s: {"p50": round(v["p50"], 3), "p99": round(v["p99"], 3)}
            for s, v in self.stage_summary(recent=True).items()
        }
        return {
            "fps": round(c.fps(), 2),
            "frames": c.frames,
            "dropped": c.dropped,
            "source_dropped": c.source_dropped,
            "queue_dropped": c.queue_dropped,
            "faces": c.faces,
            "face_present": c.faces > 0,
            "tracks": c.tracks,
            "events": c.events,
            "gaps": c.gaps,
            "interrupted": c.interrupted,
            "tracking_noise_iod": (None if c.tracking_noise is None
                                   else round(c.tracking_noise, 5)),
            "tracking_noisy": is_noisy(c.tracking_noise),
            "ended": c.ended,
            "latency_ms": lat,
        }
