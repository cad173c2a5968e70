"""The live pipeline: sources in, expression events out.

::

    source thread (one per source)           engine thread (one)
    decode -> face tracker -> features  --->  one batched StreamEngine.step per tick over all
    (stream/pipeline_worker.py)     bounded   live tracks of all sources -> per-track
                                    queue     PeakDetector -> events -> publisher / JSONL

Per face track the engine thread keeps a stream slot, a :class:`~stream.ringbuffer.FeatureRing`
(source frame numbers and timestamps of recent steps) and a
:class:`~engine.detector.PeakDetector`. A *tick* takes every item waiting in the queue (at most
one frame per track) and steps them together. Network outputs belong to the frame pushed
``D = lookahead_frames`` steps earlier; the ring maps them back to source frames.

Nothing open is lost: when a track ends (face gone for ``max_missed_frames``) or its source
ends, the slot is flushed (the D pending outputs) and the detector flushed, so an expression
still in progress is emitted. Ctrl-C / :meth:`Pipeline.stop` stops the sources and then does
the same for every track. When a live source loses its frames (a camera loss found by its
watchdog, or a gap between frames; :class:`~stream.pipeline_worker.GapItem`) its tracks are
flushed the same way but their open instance is *interrupted*: it ends at the last frame seen,
its event says ``interrupted: true``, and macro/micro comes from the apex branch alone, never
from the length-based instance classifier or verifier (the run's length is only a lower bound).

Events get ``latency_ms`` = publish time minus the arrival of the frame whose processing
closed them. A status heartbeat per stream (``status.<stream>``) is published about once per
``heartbeat_s`` with the :class:`~stream.pipeline_metrics.Metrics` snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.detector import DetectorConfig, PeakDetector
from pfes.errors import InputError, PfesError
from stream.events import STATUS_SCHEMA, Event, EventSequencer, event_from_instance
from stream.frames import Source
from stream.pipeline_metrics import Metrics
from stream.pipeline_worker import EndItem, GapItem, SourceWorker, TickItem, set_openblas_threads
from stream.publish import NullPublisher, Publisher
from stream.quality import WINDOW_FRAMES, brow_jitter, is_noisy, noisy_warning
from stream.ringbuffer import FeatureRing

__all__ = ["PipelineConfig", "Pipeline", "PipelineReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of one pipeline run.

    realtime: play files at their frame rate (else as fast as possible, never dropping).
    queue_items: bound of the source -> engine queue (items = frames).
    max_missed_frames: a track ends after this many frames without its face.
    heartbeat_s: period of the ``status.<stream>`` heartbeat.
    publish_intensity: send ``intensity.<stream>`` per frame and track (only if subscribed).
    max_ticks_items: at most this many items per batched step.
    blas_threads: OpenBLAS (numpy) threads while running, restored afterwards; None: as is.
    keep_events: the report keeps the last this many events (memory stays bounded on a long
        run; the per-stream ``events`` counters count them all).
    """

    realtime: bool = True
    queue_items: int = 64
    max_missed_frames: int = 10
    heartbeat_s: float = 1.0
    publish_intensity: bool = True
    max_tick_items: int = 64
    blas_threads: int | None = 1
    keep_events: int = 10_000

    def __post_init__(self) -> None:
        if self.queue_items < 1 or self.max_missed_frames < 0 or self.heartbeat_s <= 0:
            raise InputError("pipeline config: queue_items >= 1, max_missed_frames >= 0, heartbeat_s > 0")
        if self.keep_events < 0:
            raise InputError("pipeline config: keep_events >= 0")


@dataclass
class PipelineReport:
    """What a finished run did: events (the last ``keep_events``), per-stream counters, stage
    latency percentiles."""

    events: list[Event]
    streams: dict[str, dict]
    stages_ms: dict[str, dict[str, float]]
    event_latency_ms: dict[str, float]
    errors: dict[str, PfesError] = field(default_factory=dict)
    interrupted: bool = False
    wall_s: float = 0.0


class _TrackState:
    __slots__ = ("slot", "ring", "detector", "bs")

    def __init__(self, slot: int, ring: FeatureRing, detector: Any):
        self.slot = slot
        self.ring = ring
        self.detector = detector
        self.bs: FeatureRing | None = None  # blendshapes per step (real-face stage only)


class Pipeline:
    """Run sources through tracker, features, engine and detector; publish events.

    sources: frame sources (opened by :meth:`run` if not yet open).
    engine: a ``engine.runtime.StreamEngine`` (or anything with open_slot / close_slot /
        step / flush and ``lookahead_frames``, ``in_features``).
    detector: the operating point (from the checkpoint).
    tracker_factory: source -> face tracker (one per source, built in its thread).
    feature_factory: fps -> per-track feature extractor.
    publisher: where messages go (default: nowhere); used from the engine thread only.
    on_event: called with each Event after it is published (engine thread; keep it quick).
    annotate: called with each Event before it is published, returns the Event to publish
        (engine thread; e.g. ``stream.snapshots.Snapshots.annotate``).
    writer: optional JSONL writer with ``write(event)``.
    real_face: run the real-face stage (``stream.expression.RealFaceSpotter``): the feature
        extractor then returns the network's F features followed by the 52 blendshapes
        (``FaceFeatureExtractor``), and events say what moved.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        engine: Any,
        detector: DetectorConfig | None,
        tracker_factory: Callable[[Source], Any],
        feature_factory: Callable[[float], Any],
        publisher: Publisher | None = None,
        on_event: Callable[[Event], None] | None = None,
        writer: Any = None,
        config: PipelineConfig | None = None,
        metrics: Metrics | None = None,
        real_face: bool = False,
        annotate: Callable[[Event], Event] | None = None,
    ):
        if not sources:
            raise InputError("the pipeline needs at least one source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise InputError(f"stream names must be distinct, got {names}")
        self.sources = list(sources)
        self.engine = engine
        self.detector_cfg = detector or DetectorConfig()
        self.tracker_factory = tracker_factory
        self.feature_factory = feature_factory
        self.publisher = publisher or NullPublisher()
        self.on_event = on_event
        self.annotate = annotate
        self.writer = writer
        self.cfg = config or PipelineConfig()
        self.metrics = metrics or Metrics()
        self.sequencer = EventSequencer()
        self.real_face = bool(real_face)
        self.events: deque[Event] = deque(maxlen=self.cfg.keep_events)
        self._stop = threading.Event()
        self._engine_done = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=self.cfg.queue_items)
        self._tracks: dict[tuple[int, int], _TrackState] = {}
        self._ended: set[int] = set()
        self._errors: dict[str, PfesError] = {}
        self._engine_error: BaseException | None = None
        self._fps: list[float] = []
        self._delay = int(getattr(engine, "lookahead_frames", 0))

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask everything to stop; open instances are still flushed and published."""
        self._stop.set()
        for s in self.sources:
            interrupt = getattr(s, "interrupt", None)
            if interrupt is not None:
                interrupt()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> PipelineReport:
        """Process until every source ends or :meth:`stop` is called; returns the report.

        Raises a source's error only if it failed before the run started (open); errors
        later on end that source and are listed in the report's ``errors``.
        """
        t_start = time.monotonic()
        for s in self.sources:
            s.open()
        blas_before = None
        if self.cfg.blas_threads is not None:
            blas_before = set_openblas_threads(self.cfg.blas_threads)
        from stream.source_live import LiveSource

        workers = []
        for i, s in enumerate(self.sources):
            live = isinstance(s, LiveSource)
            fps = s.fps if s.fps and s.fps > 0 else 30.0
            self._fps.append(float(fps))
            workers.append(
                SourceWorker(
                    i, s, self._queue, self.metrics.stream(s.name), self.tracker_factory,
                    self.feature_factory, self._stop,
                    max_missed_frames=self.cfg.max_missed_frames,
                    lossless=not live and not self.cfg.realtime,
                    pace=not live and self.cfg.realtime and not getattr(s, "realtime", False),
                    live=live,
                )
            )
        engine_thread = threading.Thread(target=self._engine_main, name="engine", daemon=True)
        engine_thread.start()
        for w in workers:
            w.start()
        interrupted = False
        # wait on an Event, not Thread.join: a KeyboardInterrupt inside join() can leave the
        # thread looking finished while it still runs (CPython), and we must wait for the flush
        try:
            while not self._engine_done.wait(0.2):
                pass
        except KeyboardInterrupt:
            interrupted = True
            log.info("interrupted: stopping sources and flushing open expressions")
            self.stop()
            while not self._engine_done.wait(0.2):
                pass
        finally:
            self.stop()
            while any(w.thread.is_alive() for w in workers):
                try:  # the engine is gone: keep the queue moving so workers can end
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            for s in self.sources:
                s.close()
            if blas_before is not None:
                set_openblas_threads(blas_before)
        if self._engine_error is not None:
            raise self._engine_error
        return PipelineReport(
            events=list(self.events),
            streams={s.name: self._stream_report(s.name) for s in self.sources},
            stages_ms=self.metrics.stage_summary(),
            event_latency_ms=self.metrics.latency_summary(),
            errors=dict(self._errors),
            interrupted=interrupted,
            wall_s=time.monotonic() - t_start,
        )

    def _stream_report(self, name: str) -> dict:
        c = self.metrics.stream(name)
        return {
            "frames": c.frames,
            "frames_with_face": c.frames_with_face,
            "dropped": c.dropped,
            "source_dropped": c.source_dropped,
            "queue_dropped": c.queue_dropped,
            "events": c.events,
            "tracking_noise_iod": c.tracking_noise,
            "error": c.error,
        }

    # -- engine thread ---------------------------------------------------------------------
    def _engine_main(self) -> None:
        try:
            self._engine_loop()
        except BaseException as e:  # surfaced by run()
            log.exception("engine thread failed")
            self._engine_error = e
            self._stop.set()
        finally:
            self._engine_done.set()

    def _engine_loop(self) -> None:
        n_src = len(self.sources)
        carry: list[Any] = []
        next_hb = time.monotonic()
        while len(self._ended) < n_src:
            now = time.monotonic()
            if now >= next_hb:
                self._heartbeat()
                next_hb = now + self.cfg.heartbeat_s
            self.publisher.poll()
            items = carry
            carry = []
            if not items:
                try:
                    items.append(self._queue.get(timeout=min(0.1, max(0.0, next_hb - now))))
                except queue.Empty:
                    continue
            while len(items) < self.cfg.max_tick_items:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch, carry = self._split_tick(items)
            self._tick(batch)
        self._heartbeat()

    def _split_tick(self, items: list[Any]) -> tuple[list[Any], list[Any]]:
        """At most one item per source in a tick (keeps each source's order)."""
        batch, carry, used = [], [], set()
        for it in items:
            if it.source in used:
                carry.append(it)
            else:
                used.add(it.source)
                batch.append(it)
        return batch, carry

    def _tick(self, batch: list[Any]) -> None:
        ticks = [it for it in batch if isinstance(it, TickItem)]
        for it in ticks:
            for tid in it.lost:
                self._end_track(it.source, tid, it.frame, it.arrival_s)
        keys, feats, valids, owners = [], [], [], []
        for it in ticks:
            for tid, feat, ok in it.rows:
                keys.append((it.source, tid))
                feats.append(feat)
                valids.append(ok)
                owners.append(it)
        extra: dict[int, dict[str, float]] = {id(it): {"detector": 0.0, "publish": 0.0} for it in ticks}
        engine_ms = 0.0
        if keys:
            slots = [self._track(k).slot for k in keys]
            n_in = int(getattr(self.engine, "in_features", len(feats[0])))
            x = np.stack(feats)
            bs_rows = x[:, n_in:] if self.real_face else None
            x = x[:, :n_in] if self.real_face else x
            feats = list(x)
            t = time.perf_counter()
            res = self.engine.step(slots, x, np.asarray(valids, dtype=bool))
            engine_ms = (time.perf_counter() - t) * 1000.0
            for i, key in enumerate(keys):
                it = owners[i]
                st = self._tracks[key]
                st.ring.push(it.frame, feats[i], bool(valids[i]), it.pts_s, it.arrival_s)
                if st.bs is not None and bs_rows is not None:
                    st.bs.push(it.frame, bs_rows[i], bool(valids[i]), it.pts_s, it.arrival_s)
                if res.ready[i]:
                    self._output(key, st, int(res.frame[i]), float(res.intensity[i]),
                                 res.apex[i], it.frame, it.arrival_s, extra[id(it)])
        for it in ticks:
            name = self.sources[it.source].name
            self.metrics.record_frame(name, {**it.stages_ms, "engine": engine_ms, **extra[id(it)]}, it.faces)
        for it in batch:
            if isinstance(it, EndItem):
                self._end_source(it)
            elif isinstance(it, GapItem):
                for tid in it.lost:
                    self._end_track(it.source, tid, it.frame, it.arrival_s)
                for tid in it.cut:
                    self._end_track(it.source, tid, it.frame, it.arrival_s, interrupted=True)

    def _track(self, key: tuple[int, int]) -> _TrackState:
        st = self._tracks.get(key)
        if st is None:
            fps = self._fps[key[0]]
            cap = int(np.ceil(self.detector_cfg.macro_max_duration_s * fps)) + self._delay + 32
            ring = FeatureRing(cap, int(getattr(self.engine, "in_features", 1)))
            if self.real_face:
                from stream.blendshapes import BLENDSHAPE_NAMES
                from stream.expression import RealFaceSpotter

                st = _TrackState(self.engine.open_slot(), ring, RealFaceSpotter(self.detector_cfg, fps))
                st.bs = FeatureRing(cap, len(BLENDSHAPE_NAMES))
            else:
                st = _TrackState(self.engine.open_slot(), ring, PeakDetector(self.detector_cfg, fps))
            self._tracks[key] = st
        return st

    def _output(self, key, st: _TrackState, step: int, intensity: float, apex, trig_frame: int,
                trig_arrival: float, times: dict[str, float]) -> None:
        """One network output (for ``step`` of this track) -> detector -> events."""
        frame, pts, _ = st.ring.step_info(step)
        valid = bool(st.ring.valid[step % st.ring.capacity])
        t = time.perf_counter()
        if st.bs is not None:
            insts = st.detector.push(frame, intensity, apex, valid, st.bs.feat[step % st.bs.capacity])
        else:
            insts = st.detector.push(frame, intensity, apex, valid)
        t2 = time.perf_counter()
        times["detector"] += (t2 - t) * 1000.0
        name = self.sources[key[0]].name
        if self.cfg.publish_intensity:
            topic = f"intensity.{name}"
            if self.publisher.wants(topic):
                self.publisher.send(topic, {
                    "schema": "pfes.intensity/1", "stream": name, "track": key[1],
                    "frame": frame, "t": round(pts, 6), "intensity": round(intensity, 5),
                    "apex": [round(float(apex[0]), 5), round(float(apex[1]), 5)], "valid": valid,
                })
        for inst in insts:
            self._emit(key, st, inst, trig_frame, trig_arrival)
        times["publish"] += (time.perf_counter() - t2) * 1000.0

    def _emit(self, key, st: _TrackState, inst: Any, trig_frame: int, trig_arrival: float,
              interrupted: bool = False) -> None:
        name = self.sources[key[0]].name
        fps = self._fps[key[0]]
        what: str = ""
        moved: list[tuple[str, float]] = []
        if st.bs is not None:
            from stream.expression import what_moved

            moved, what = what_moved(_frames_of(st.bs, inst.apex), inst.onset - _first_frame(st.bs), inst.apex - _first_frame(st.bs))
        ev = event_from_instance(
            inst, seq=self.sequencer.next(), stream=name, track=key[1],
            pts_of=lambda f: st.ring.pts_of(f, fps), emitted_frame=trig_frame,
            emitted_at=time.time(), latency_ms=(time.monotonic() - trig_arrival) * 1000.0,
            what=what, moved=moved,
            interrupted=interrupted,
        )
        if interrupted:
            self.metrics.stream(name).interrupted += 1
        if self.annotate is not None:
            ev = self.annotate(ev)
        self.publisher.send(f"event.{name}", ev.to_json())
        if self.writer is not None:
            self.writer.write(ev)
        self.events.append(ev)
        self.metrics.stream(name).events += 1
        self.metrics.record_event_latency(ev.latency_ms)
        if self.on_event is not None:
            self.on_event(ev)

    def _end_track(self, src: int, tid: int, trig_frame: int, trig_arrival: float,
                   interrupted: bool = False) -> None:
        """Flush a track's pending outputs and open instance (``interrupted``: cut by a gap,
        see the module docstring); free its slot."""
        key = (src, tid)
        if key not in self._tracks:
            return
        self._measure_noise([key])
        st = self._tracks.pop(key)
        times = {"detector": 0.0, "publish": 0.0}
        if self._delay:
            res = self.engine.flush(st.slot)
            for j in range(len(res.intensity)):
                if res.ready[j]:
                    # outputs for steps whose frames are in the ring; flushed steps map there
                    self._output(key, st, int(res.frame[j]), float(res.intensity[j]),
                                 res.apex[j], trig_frame, trig_arrival, times)
        if interrupted:
            last = int(st.ring.frame[(st.ring.pushed - 1) % st.ring.capacity]) if st.ring.pushed else -1
            for inst in _flush_interrupted(st.detector, last):
                self._emit(key, st, inst, trig_frame, trig_arrival, interrupted=True)
        else:
            for inst in st.detector.flush():
                self._emit(key, st, inst, trig_frame, trig_arrival)
        self.engine.close_slot(st.slot)

    def _end_source(self, item: EndItem) -> None:
        src = self.sources[item.source]
        last_arrival = time.monotonic()
        for key in sorted(k for k in self._tracks if k[0] == item.source):
            ring = self._tracks[key].ring
            frame = int(ring.frame[(ring.pushed - 1) % ring.capacity]) if ring.pushed else -1
            self._end_track(key[0], key[1], frame, last_arrival)
        c = self.metrics.stream(src.name)
        c.ended = True
        c.tracks = 0
        if item.error is not None:
            c.error = str(item.error)
            self._errors[src.name] = item.error
        self._ended.add(item.source)

    def _measure_noise(self, keys) -> None:
        """Each stream's tracking noise: the largest brow jitter of the given tracks."""
        worst: dict[int, float] = {}
        for key in keys:
            feat, valid, _ = self._tracks[key].ring.last(WINDOW_FRAMES)
            j = brow_jitter(feat, valid)
            if j is not None:
                worst[key[0]] = max(j, worst.get(key[0], 0.0))
        for src, j in worst.items():
            name = self.sources[src].name
            c = self.metrics.stream(name)
            was = is_noisy(c.tracking_noise)
            c.tracking_noise = j
            if is_noisy(j) != was:  # say so once per change, not every heartbeat
                if is_noisy(j):
                    log.warning("%s: %s", name, noisy_warning(j))
                else:
                    log.warning("%s: face tracking steady again (brow jitter %.4f IOD)", name, j)

    def _heartbeat(self) -> None:
        self._measure_noise(list(self._tracks))
        sink_status = None
        if hasattr(self.writer, "status"):  # the --events file: retried here, reported below
            self.writer.poll()
            sink_status = self.writer.status()
        now = time.time()
        for s in self.sources:
            body = {"schema": STATUS_SCHEMA, "stream": s.name, "time": round(now, 3)}
            body.update(self.metrics.status(s.name))
            body["connected"] = bool(getattr(s, "connected", True))
            body["reconnects"] = int(getattr(s, "reconnects", 0))
            body["losses"] = int(getattr(s, "losses", 0))
            body["source_error"] = "" if body["connected"] else str(getattr(s, "last_error", ""))
            body["pub_dropped"] = int(getattr(self.publisher, "dropped", 0))
            body["thresholds"] = {"open": self.detector_cfg.open_threshold,
                                  "close": self.detector_cfg.close_threshold}
            body["last_seq"] = self.sequencer.count - 1  # lets a subscriber see its lag
            if sink_status is not None:
                body["events_file"] = sink_status
            self.publisher.send(f"status.{s.name}", body)


def _first_frame(ring: FeatureRing) -> int:
    """Frame number of the oldest step a ring still holds."""
    return int(ring.frame[ring.oldest % ring.capacity])


def _frames_of(ring: FeatureRing, last_frame: int) -> np.ndarray:
    """Rows of ``ring`` from its oldest step up to ``last_frame``, in frame order (NaN where a
    frame had no face); row k is frame ``_first_frame(ring) + k``."""
    first = _first_frame(ring)
    n = max(0, last_frame - first + 1)
    out = np.full((n, ring.n_features), np.nan, dtype=np.float32)
    for k in range(ring.oldest, ring.pushed):
        i = k % ring.capacity
        f = int(ring.frame[i]) - first
        if 0 <= f < n and ring.valid[i]:
            out[f] = ring.feat[i]
    return out



def _flush_interrupted(detector: PeakDetector, last_frame: int) -> list[Any]:
    """Close a run cut by a gap. Its length is only a lower bound of the expression's, so the
    length-based instance classifier and verifier are left out and the apex branch decides:
    micro only where its micro sigmoid passes its threshold and beats the macro one (a run
    already longer than the micro limit stays macro). The offset is the last frame seen, not a
    prediction past it."""
    cfg = detector.cfg
    detector.cfg = dataclasses.replace(cfg, instance_classifier=(), instance_verifier=(),
                                       micro_over_macro=True, offset_extend=0.0)
    try:
        insts = detector.flush()
    finally:
        detector.cfg = cfg
    return [dataclasses.replace(i, offset=max(i.apex, min(i.offset, last_frame))) for i in insts]
