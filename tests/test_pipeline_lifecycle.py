"""Pipeline lifecycle: Ctrl-C flushes open expressions, source errors keep emitted events,
several sources share one batched step, status heartbeats reach subscribers."""

from __future__ import annotations

import json
import signal
import threading
import time

import numpy as np
import pytest
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net

from engine.detector import DetectorConfig
from engine.runtime import StreamEngine
from pfes.errors import SourceError
from stream.features import FeatureExtractor
from stream.pipeline import Pipeline, PipelineConfig
from stream.publish import EventWriter, ZmqPublisher
from stream.subscribe import Subscriber

FPS = 30.0


class _AlwaysHigh:
    """An engine double whose intensity is high from step ``start`` on (an open expression)."""

    lookahead_frames = 0

    def __init__(self, net, start=5):
        self.inner = StreamEngine(net, max_streams=8)
        self.in_features = self.inner.in_features
        self.start = start
        self.steps = 0
        self.max_batch = 0

    def open_slot(self):
        return self.inner.open_slot()

    def close_slot(self, s):
        self.inner.close_slot(s)

    def flush(self, s):
        return self.inner.flush(s)

    def step(self, slots, x, valid):
        r = self.inner.step(slots, x, valid)
        self.max_batch = max(self.max_batch, len(slots))
        self.steps += 1
        r.intensity[:] = np.where(r.frame >= self.start, 0.9, 0.0)
        return r


def _pipe(sources, engine, **kw):
    lm, valid = make_landmarks(2000, [], seed=0)
    return Pipeline(
        sources, engine, DetectorConfig(macro_max_duration_s=60.0),
        tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
        feature_factory=lambda fps: FeatureExtractor(fps), **kw)


class _Paced(ArraySource):
    def frames(self):
        for f in super().frames():
            time.sleep(0.002)
            yield f


def test_ctrl_c_flushes_the_open_expression(tmp_path):
    net = small_net(FeatureExtractor(FPS).n_features)
    eng = _AlwaysHigh(net)
    w = EventWriter(tmp_path / "ev.jsonl")
    pipe = _pipe([_Paced(100000, FPS)], eng, writer=w, config=PipelineConfig(realtime=False))
    main = threading.main_thread().ident

    def interrupt():
        while pipe.metrics.stream("fake").frames < 40:
            time.sleep(0.005)
        signal.pthread_kill(main, signal.SIGINT)  # a real Ctrl-C in the main thread

    # Python installs its Ctrl-C handler only where SIGINT is not ignored at start-up, and a
    # shell ignores SIGINT for background jobs (`pytest &`, nohup): set it for this test
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        t = threading.Thread(target=interrupt)
        t.start()
        rep = pipe.run()
        t.join()
    finally:
        signal.signal(signal.SIGINT, old)
    w.close()
    assert rep.interrupted
    assert len(rep.events) == 1  # the expression open at Ctrl-C was flushed
    ev = rep.events[0]
    assert ev.onset_frame == 5 and ev.offset_frame >= 39
    assert [json.loads(x)["seq"] for x in (tmp_path / "ev.jsonl").read_text().splitlines()] == [0]
    assert eng.inner.open_slots == []


class _Breaks(ArraySource):
    def frames(self):
        for f in super().frames():
            if f.index == 60:
                raise SourceError("decode error at frame 60")
            yield f


def test_source_error_mid_stream_keeps_events(tmp_path):
    net = small_net(FeatureExtractor(FPS).n_features)
    w = EventWriter(tmp_path / "ev.jsonl")
    pipe = _pipe([_Breaks(200, FPS, name="b")], _AlwaysHigh(net), writer=w,
                 config=PipelineConfig(realtime=False))
    rep = pipe.run()
    w.close()
    assert "b" in rep.errors and rep.errors["b"].exit_code == 3
    assert len(rep.events) == 1 and rep.events[0].offset_frame == 59
    assert len((tmp_path / "ev.jsonl").read_text().splitlines()) == 1


def test_several_sources_are_batched_and_heartbeats_published():
    net = small_net(FeatureExtractor(FPS).n_features)
    eng = _AlwaysHigh(net, start=10**9)
    srcs = [_Paced(150, FPS, name=f"s{i}") for i in range(3)]
    with ZmqPublisher("tcp://127.0.0.1:*") as pub, Subscriber(pub.endpoint, ["status."]) as sub:
        assert pub.wait_for_subscribers(1)
        pipe = _pipe(srcs, eng, publisher=pub,
                     config=PipelineConfig(realtime=False, heartbeat_s=0.05))
        rep = pipe.run()
        seen = {}
        end = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < end:
            m = sub.recv(timeout_s=0.05)
            if m is not None:
                seen[m.stream] = m.body
    assert all(rep.streams[f"s{i}"]["frames"] == 150 for i in range(3))
    assert eng.max_batch >= 2  # tracks of different sources shared a step
    assert eng.steps < 450
    assert set(seen) == {"s0", "s1", "s2"}
    body = seen["s0"]
    for key in ("fps", "frames", "dropped", "faces", "face_present", "latency_ms", "connected"):
        assert key in body
    assert set(body["latency_ms"]) >= {"decode", "landmarks", "features", "engine", "detector",
                                       "publish"}


def test_duplicate_stream_names_rejected():
    net = small_net(FeatureExtractor(FPS).n_features)
    with pytest.raises(Exception, match="distinct"):
        _pipe([ArraySource(1), ArraySource(1)], StreamEngine(net))
