"""Live sources: webcams (PyAV v4l2, OpenCV fallback) and RTSP cameras (PyAV).

A live source runs a reader thread that decodes as fast as the device delivers and keeps only
the NEWEST frame: when the consumer is slower than the camera, older frames are dropped and
counted in ``dropped`` (their numbers still count, so ``Frame.index`` jumps). That keeps the
latency of what is processed bounded instead of letting a backlog grow.

Timestamps: ``Frame.pts_s`` is the source clock (RTP/container pts in seconds, made monotonic
across reconnects) and is what events report; ``Frame.arrival_s`` is ``time.monotonic()``
when the reader got the frame, which is what latency is measured from.

Connection loss is never fatal once a source has delivered: the reader retries with
exponential backoff (``backoff_initial_s`` doubling up to ``backoff_max_s``, back to
``backoff_initial_s`` once a connection delivers again), logs each attempt, and exposes
``connected``, ``reconnects``, ``losses`` and ``last_error`` for the status heartbeat.
Failing to connect at ``open()`` raises :class:`~pfes.errors.SourceError` (exit code 3), so a
wrong address is reported at once.

A **watchdog** makes a silent camera a loss too: each connection is read in its own thread,
and when it delivers no frame for ``read_timeout_s`` (a frozen server whose TCP connection
stays open, a stuck driver) the source declares the connection lost without waiting for the
decoder, abandons it (the stuck thread ends at its next frame or when FFmpeg's socket timeout
fires, and its frames are ignored meanwhile) and reconnects. ``frames(gaps=True)`` yields a
:class:`Gap` marker at each loss, between the last frame before it and the first after, so
the pipeline can close what was open at the loss.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pfes.errors import SourceError
from stream.frames import Frame, Source
from stream.source_file import av_to_rgb, import_av

__all__ = ["Gap", "LiveSource", "RtspSource", "WebcamSource", "RTSP_OPTIONS"]

log = logging.getLogger(__name__)

# Low-delay RTSP: TCP interleaved (no UDP loss/reordering), no input buffering.
# analyzeduration 0.1 s: start decoding after 0.1 s of probing instead of up to 5 s (the SDP
# already describes the stream); with nobuffer the probed packets are not replayed.
RTSP_OPTIONS = {
    "rtsp_transport": "tcp",
    "fflags": "nobuffer",
    "flags": "low_delay",
    "analyzeduration": "100000",
}

# A raw decoded frame: (payload, convert(payload) -> RGB image, pts_s or None, decode_s)
_Raw = tuple[Any, Callable[[Any], np.ndarray], float | None, float]


@dataclass(frozen=True)
class Gap:
    """Yielded by ``frames(gaps=True)`` where the source lost its connection: the frames
    before and after it are not continuous. reason: why (``last_error``); at_s: monotonic time
    the loss was declared."""

    reason: str
    at_s: float


class LiveSource(Source):
    """Threaded newest-frame-only source; subclasses implement :meth:`_connect`.

    open_timeout_s: how long ``open()`` waits for the first frame.
    reconnect: retry after a lost connection (live cameras) instead of ending the stream.
    """

    def __init__(
        self,
        name: str,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        reconnect: bool = True,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
    ):
        self.name = name
        self.open_timeout_s = float(open_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.reconnect = bool(reconnect)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.fps = 0.0
        self.size = (0, 0)
        self.dropped = 0
        self.decoded = 0
        self.skipped_at_start = 0  # replaced before the consumer started reading
        self.connected = False
        self.reconnects = 0
        self.losses = 0  # connections lost after delivering (watchdog or error)
        self.last_error = ""
        self.last_frame_at = 0.0  # monotonic arrival of the newest frame
        self.last_decode_s = 0.0  # decode + colour conversion of the last yielded frame
        self._cond = threading.Condition()
        self._slot: tuple[int, _Raw, float] | None = None  # (index, raw, arrival_s)
        self._stop = threading.Event()
        self._ended = False
        self._first = threading.Event()
        self._consuming = False
        self._thread: threading.Thread | None = None
        self._pts_offset = 0.0
        self._last_pts = float("-inf")
        self._gen = 0  # connection generation: frames of an abandoned connection are ignored
        self._loss_index = 0  # frames numbered below this came before the latest loss
        self._pump: threading.Thread | None = None

    # -- subclass hook ---------------------------------------------------------------------
    def _connect(self) -> Iterator[_Raw]:
        """Open the device and yield raw frames until it ends; raise SourceError on failure.

        Sets ``self.fps`` and ``self.size`` once known. Must return promptly after
        ``self._stop`` is set (use read timeouts).
        """
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._reader, name=f"read-{self.name}", daemon=True)
        self._thread.start()
        self._first.wait(self.open_timeout_s + self.read_timeout_s)
        if not self.connected or self.decoded == 0:
            err = self.last_error or f"no frame within {self.open_timeout_s + self.read_timeout_s:g} s"
            self.close()
            raise SourceError(f"cannot open {self.describe()}: {err}")

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in (self._thread, self._pump):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=self.read_timeout_s + 1.0)

    def interrupt(self) -> None:
        """Make ``frames()`` end soon (from any thread); ``close()`` still releases the device."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def describe(self) -> str:
        return self.name

    # -- reader thread ---------------------------------------------------------------------
    def _reader(self) -> None:
        """Supervise connections: start one, watch it, declare it lost, back off, retry."""
        backoff = self.backoff_initial_s
        delivered_before = False
        while not self._stop.is_set():
            gen = self._gen
            done = threading.Event()
            delivered = threading.Event()
            started = time.monotonic()
            pump = threading.Thread(target=self._read_connection, args=(gen, done, delivered),
                                    name=f"conn-{self.name}", daemon=True)
            self._pump = pump
            pump.start()
            while not done.wait(0.1) and not self._stop.is_set():
                # the watchdog: no frame for read_timeout_s (open_timeout_s + read_timeout_s
                # for a connection that has not delivered yet) is a loss
                now = time.monotonic()
                if delivered.is_set():
                    silent, limit = now - self.last_frame_at, self.read_timeout_s
                else:
                    silent, limit = now - started, self.open_timeout_s + self.read_timeout_s
                if silent > limit:
                    self._gen += 1  # first: the abandoned thread no longer sets last_error
                    self.last_error = f"no frame for {silent:.1f} s"
                    break
            self._gen += 1  # abandon this connection (its thread ends at its next frame)
            if delivered.is_set():
                delivered_before = True
                backoff = self.backoff_initial_s  # it worked: the next wait starts short again
            if self.connected:
                with self._cond:
                    self.connected = False
                    self.losses += 1
                    self._loss_index = self.decoded
                    self._cond.notify_all()
            if self._stop.is_set():
                break
            if not delivered_before or not self.reconnect:
                if delivered_before:
                    log.warning("%s: connection lost (%s)", self.name, self.last_error)
                break  # never connected: open() reports it; or a source that just ends
            log.warning("%s: connection lost (%s); retrying in %.1f s", self.name, self.last_error, backoff)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2.0, self.backoff_max_s)
            self.reconnects += 1
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        self._first.set()

    def _read_connection(self, gen: int, done: threading.Event, delivered: threading.Event) -> None:
        """One connection (its own thread): frames into the slot until it ends or is abandoned."""
        frames = self._connect()
        try:
            for raw in frames:
                if self._stop.is_set() or gen != self._gen:
                    break
                if not self.connected:
                    self.connected = True
                    if self.losses:
                        log.warning("%s: reconnected", self.name)
                delivered.set()
                self._put(raw)
                self._first.set()
            else:
                if not self._stop.is_set() and gen == self._gen:
                    self.last_error = "stream ended"
        except SourceError as e:
            if gen == self._gen:
                self.last_error = str(e)
        except Exception as e:  # third-party decode errors: translate, keep going
            if gen == self._gen:
                self.last_error = f"{type(e).__name__}: {e}"
        finally:
            close = getattr(frames, "close", None)
            try:
                if close is not None:
                    close()  # releases the device / socket now, not at garbage collection
            except Exception:  # pragma: no cover
                log.debug("closing a connection failed", exc_info=True)
            done.set()

    def _put(self, raw: _Raw) -> None:
        arrival = time.monotonic()
        with self._cond:
            if self._slot is not None and self._consuming:
                # the consumer never saw the previous frame (frames replaced before anyone
                # started reading, e.g. while the face tracker loads, are counted apart)
                self.dropped += 1
            elif self._slot is not None:
                self.skipped_at_start += 1
            self._slot = (self.decoded, raw, arrival)
            self.decoded += 1
            self.last_frame_at = arrival
            self._cond.notify()

    def _pts(self, raw_pts: float | None, arrival: float) -> float:
        """Monotonic source time: container pts, shifted to continue across reconnects."""
        step = 1.0 / self.fps if self.fps > 0 else 1e-3
        if raw_pts is None:
            raw_pts = arrival
        pts = raw_pts + self._pts_offset
        if pts <= self._last_pts:
            self._pts_offset = self._last_pts + step - raw_pts
            pts = self._last_pts + step
        self._last_pts = pts
        return pts

    # -- consumer --------------------------------------------------------------------------
    def frames(self, gaps: bool = False) -> Iterator[Any]:
        """Frames as they come (newest only); with ``gaps``, also a :class:`Gap` at each loss
        (several losses with no frame between them make one Gap)."""
        if self._thread is None:
            self.open()
        self._consuming = True
        seen = self.losses
        while True:
            with self._cond:
                while (self._slot is None and not self._ended and not self._stop.is_set()
                       and not (gaps and self.losses != seen)):
                    self._cond.wait(0.5)
                lost = gaps and self.losses != seen
                if self._slot is None or (lost and self._slot[0] >= self._loss_index):
                    if lost:  # before any frame that came after the loss
                        seen = self.losses
                        yield Gap(self.last_error, time.monotonic())
                        continue
                    return
                index, (payload, convert, raw_pts, decode_s), arrival = self._slot
                self._slot = None
            t0 = time.perf_counter()
            image = convert(payload)
            self.last_decode_s = decode_s + (time.perf_counter() - t0)
            yield Frame(index=index, image=image, pts_s=self._pts(raw_pts, arrival), arrival_s=arrival)


def _av_rgb(vf: Any) -> np.ndarray:
    # one conversion thread: PyAV's default (a thread per CPU) costs milliseconds per frame
    # on a small machine where the face mesh needs the cores (benchmarks/RESULTS.md)
    return av_to_rgb(vf)


def _av_frames(container: Any, stop: threading.Event, src: LiveSource) -> Iterator[_Raw]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    src.fps = float(rate) if rate else (src.fps or 30.0)
    # demux and decode apart: demuxing waits for the camera (a frame interval on a live feed),
    # which is not decode work and must not count as per-frame compute
    for packet in container.demux(stream):
        if stop.is_set():
            return
        t0 = time.perf_counter()
        frames = packet.decode()
        decode_s = (time.perf_counter() - t0) / max(1, len(frames))
        for vf in frames:
            if src.size == (0, 0):
                src.size = (int(vf.width), int(vf.height))
            yield (vf, _av_rgb, None if vf.time is None else float(vf.time), decode_s)


class RtspSource(LiveSource):
    """An RTSP camera via PyAV/FFmpeg over TCP with low-delay flags and timeouts."""

    def __init__(self, url: str, name: str = "rtsp", **kw: Any):
        super().__init__(name, **kw)
        self.url = url

    def describe(self) -> str:
        return self.url

    def _connect(self) -> Iterator[_Raw]:
        av = import_av()
        # FFmpeg's own socket I/O timeout (microseconds) ends a read stuck on a silent server
        options = dict(RTSP_OPTIONS, timeout=str(int(self.read_timeout_s * 1e6)))
        try:
            container = av.open(
                self.url,
                options=options,
                timeout=(self.open_timeout_s, self.read_timeout_s),
            )
        except (av.FFmpegError, OSError) as e:
            raise SourceError(f"{type(e).__name__}: {e}") from e
        try:
            if not container.streams.video:
                raise SourceError("no video stream")
            yield from _av_frames(container, self._stop, self)
        except av.ExitError as e:  # PyAV's read timeout interrupted FFmpeg
            raise SourceError(f"no frame for {self.read_timeout_s:.1f} s (read timeout)") from e
        except av.FFmpegError as e:
            raise SourceError(f"{type(e).__name__}: {e}") from e
        finally:
            container.close()


def _bgr_to_rgb(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, :, ::-1])


class WebcamSource(LiveSource):
    """A local camera: PyAV v4l2 (``/dev/video<N>``) first, OpenCV ``VideoCapture(N)`` if that fails.

    width / height / fps_request: what to ask the camera for (it may choose otherwise).
    """

    def __init__(
        self,
        index: int = 0,
        name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        fps_request: float | None = None,
        **kw: Any,
    ):
        super().__init__(name or f"webcam{index}", **kw)
        self.index = int(index)
        self.request = (width, height, fps_request)
        self.backend = ""

    def describe(self) -> str:
        return f"webcam:{self.index}"

    def _connect(self) -> Iterator[_Raw]:
        errors = []
        try:
            yield from self._connect_av()
            return
        except SourceError as e:
            if self.decoded:
                raise  # it worked before: a real loss, let the reader retry
            errors.append(f"PyAV: {e}")
        try:
            yield from self._connect_cv2()
            return
        except SourceError as e:
            errors.append(f"OpenCV: {e}")
        raise SourceError("; ".join(errors))

    def _connect_av(self) -> Iterator[_Raw]:
        av = import_av()
        w, h, f = self.request
        opts = {}
        if w and h:
            opts["video_size"] = f"{w}x{h}"
        if f:
            opts["framerate"] = f"{f:g}"
        try:
            container = av.open(
                f"/dev/video{self.index}", format="v4l2", options=opts,
                timeout=(self.open_timeout_s, self.read_timeout_s),
            )
        except (av.FFmpegError, OSError, ValueError) as e:
            raise SourceError(f"{type(e).__name__}: {e}") from e
        self.backend = "pyav"
        try:
            yield from _av_frames(container, self._stop, self)
        except av.FFmpegError as e:
            raise SourceError(f"{type(e).__name__}: {e}") from e
        finally:
            container.close()

    def _connect_cv2(self) -> Iterator[_Raw]:
        try:
            import cv2
        except ImportError as e:  # pragma: no cover
            raise SourceError("OpenCV missing: pip install opencv-python-headless") from e
        cap = cv2.VideoCapture(self.index)
        try:
            if not cap.isOpened():
                raise SourceError(f"camera {self.index} not available")
            w, h, f = self.request
            if w and h:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            if f:
                cap.set(cv2.CAP_PROP_FPS, f)
            self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
            self.backend = "opencv"
            t_start = time.monotonic()
            while not self._stop.is_set():
                t0 = time.perf_counter()
                ok, img = cap.read()
                if not ok:
                    raise SourceError("camera stopped delivering frames")
                if self.size == (0, 0):
                    self.size = (int(img.shape[1]), int(img.shape[0]))
                yield (img, _bgr_to_rgb, time.monotonic() - t_start, time.perf_counter() - t0)
        finally:
            cap.release()
