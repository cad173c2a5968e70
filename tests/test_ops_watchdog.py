"""Camera watchdog and interrupted events.

A live source that stops delivering (a frozen camera whose connection stays open) is a loss
within ``read_timeout_s`` (+ 1 s): logged, ``connected: false`` in the status heartbeat,
reconnected with backoff (reset once a connection delivers again); the expression open at the
loss is closed there and published with ``interrupted: true``, never reclassified by its
truncated length. Fast tests use a fake camera through the constructor; the network test uses
the real GStreamer RTSP server of tests/test_rtsp_live.py, frozen with SIGSTOP.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import numpy as np
import pytest
from pipeline_fakes import LandmarkTracker, free_port, make_landmarks, small_net

from engine.detector import INSTANCE_FEATURES, DetectorConfig, PeakDetector
from engine.runtime import StreamEngine
from stream.features import FeatureExtractor
from stream.pipeline import Pipeline, PipelineConfig, _flush_interrupted
from stream.publish import ZmqPublisher
from stream.source_live import Gap, LiveSource, RtspSource
from stream.subscribe import Subscriber

FPS = 30.0


class _FreezingCam(LiveSource):
    """Frames at 30 fps. Once ``freeze`` is set (or connection 1 reaches ``freeze_after``
    frames) the connection that sees it freezes: it stays open and delivers nothing until
    ``release``. Later connections deliver normally."""

    def __init__(self, freeze_after=None, **kw):
        kw.setdefault("backoff_initial_s", 0.05)
        kw.setdefault("backoff_max_s", 0.4)
        super().__init__("cam", **kw)
        self.freeze_after = freeze_after
        self.freeze = threading.Event()
        self.release = threading.Event()
        self.frozen_conn = None
        self.connects = 0

    def _connect(self):
        self.connects += 1
        me = self.connects
        self.fps = FPS
        img = np.zeros((4, 4, 3), np.uint8)
        k = 0
        while not self._stop.is_set():
            if me == 1 and k == self.freeze_after:
                self.freeze.set()
            if self.freeze.is_set() and self.frozen_conn in (None, me):
                self.frozen_conn = me
                self.release.wait()  # frozen: no frame, no error, connection open
            yield (img, lambda a: a, k / FPS, 0.0)
            k += 1
            time.sleep(1 / FPS)


def test_a_frozen_camera_is_a_loss_within_the_timeout_and_reconnects(caplog):
    cam = _FreezingCam(freeze_after=10, open_timeout_s=2.0, read_timeout_s=0.5)
    got: list = []
    with caplog.at_level(logging.WARNING, logger="stream.source_live"), cam:
        it = cam.frames(gaps=True)
        while not any(isinstance(x, Gap) for x in got):
            got.append(next(it))
        frozen_at = cam.last_frame_at
        lost_after = got[-1].at_s - frozen_at
        assert not cam.connected and cam.losses == 1
        assert "no frame for" in got[-1].reason
        for _ in range(5):  # frames again, from a new connection
            got.append(next(it))
        assert cam.connected and cam.reconnects >= 1 and cam.connects >= 2
        cam.release.set()
        cam.interrupt()
    assert 0.5 <= lost_after <= 0.5 + 1.0
    frames = [x for x in got if not isinstance(x, Gap)]
    gap_at = got.index(next(x for x in got if isinstance(x, Gap)))
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert all(not isinstance(x, Gap) for x in got[gap_at + 1 :])
    assert any("connection lost (no frame for" in r.getMessage() for r in caplog.records)
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_backoff_grows_while_down_and_starts_short_after_a_reconnect():
    class _Flaky(LiveSource):
        """Connections 2-4 fail at once; the others deliver 5 frames and end."""

        def __init__(self):
            super().__init__("flaky", backoff_initial_s=0.1, backoff_max_s=2.0, read_timeout_s=1.0)
            self.times: list[float] = []

        def _connect(self):
            self.times.append(time.monotonic())
            self.fps = FPS
            if 2 <= len(self.times) <= 4:
                raise RuntimeError("refused")
            for k in range(5):
                yield (np.zeros((2, 2, 3), np.uint8), lambda a: a, k / FPS, 0.0)
                time.sleep(0.005)

    src = _Flaky()
    with src:
        end = time.monotonic() + 10
        while len(src.times) < 7 and time.monotonic() < end:
            time.sleep(0.01)
    t = src.times
    waits = [b - a for a, b in zip(t, t[1:], strict=False)]
    # backoff 0.1 s after connection 1 delivered, then 0.2, 0.4, 0.8 s while connections 2-4
    # fail, and 0.1 s again once connection 5 has delivered
    assert waits[2] > 1.6 * waits[1] and waits[3] > 1.6 * waits[2]
    assert waits[4] < 0.5 * waits[3]


def _apex_ms(pm: float, pu: float) -> np.ndarray:
    return np.array([pm, pu], np.float32)


def test_an_interrupted_run_is_not_reclassified_by_its_length():
    # an instance classifier that calls every brief run micro, and a verifier that drops them
    n = len(INSTANCE_FEATURES)
    micro_always = tuple([0.0] * n + [20.0])
    drop_all = tuple([0.0] * n + [-20.0])
    cfg = DetectorConfig(
        open_threshold=0.5,
        close_threshold=0.3,
        instance_classifier=micro_always,
        macro_max_duration_s=10.0,
    )
    for flush in ("plain", "interrupted"):
        det = PeakDetector(cfg, FPS)
        for f in range(8):  # 8 frames (< the 0.55 s micro limit) of a clearly macro apex
            det.push(f, 0.9 if f >= 2 else 0.0, _apex_ms(0.95, 0.6), True)
        insts = det.flush() if flush == "plain" else _flush_interrupted(det, 7)
        assert len(insts) == 1
        assert insts[0].kind == ("micro" if flush == "plain" else "macro"), flush
        assert insts[0].offset == 7
    det = PeakDetector(
        DetectorConfig(open_threshold=0.5, close_threshold=0.3, instance_verifier=drop_all), FPS
    )
    for f in range(8):
        det.push(f, 0.9 if f >= 2 else 0.0, _apex_ms(0.95, 0.6), True)
    assert det.cfg.instance_verifier == drop_all
    assert len(_flush_interrupted(det, 7)) == 1  # a cut run is not judged by its length
    assert det.cfg.instance_verifier == drop_all  # the detector's settings are left as they were


class _Open:
    """Engine double: intensity high from step ``start`` on (an expression open all along)."""

    lookahead_frames = 0

    def __init__(self, net, start=5):
        self.inner = StreamEngine(net, max_streams=8)
        self.in_features = self.inner.in_features
        self.start = start

    def open_slot(self):
        return self.inner.open_slot()

    def close_slot(self, s):
        self.inner.close_slot(s)

    def flush(self, s):
        return self.inner.flush(s)

    def step(self, slots, x, valid):
        r = self.inner.step(slots, x, valid)
        r.intensity[:] = np.where(r.frame >= self.start, 0.9, 0.0)
        return r


def _pipe(src, pub):
    net = small_net(FeatureExtractor(FPS).n_features)
    lm, valid = make_landmarks(3000, [], seed=0)
    return Pipeline(
        [src],
        _Open(net),
        DetectorConfig(macro_max_duration_s=60.0),
        tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
        feature_factory=lambda fps: FeatureExtractor(fps),
        publisher=pub,
        config=PipelineConfig(realtime=True, heartbeat_s=0.1),
    )


def _watch(src, pipe, sub, freeze, thaw, timeout_s):
    """Run the pipeline; freeze() once 40 frames are in; thaw() once the loss is seen and
    a status says so; stop once frames flow again. Returns events, statuses, detection time."""
    th = threading.Thread(target=pipe.run)
    th.start()
    counters = pipe.metrics.stream("cam")
    events, statuses = [], []
    t_freeze = detected = None
    frames_at_thaw = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            m = sub.recv(timeout_s=0.02)
            if m is not None:
                (events if m.kind == "event" else statuses).append(m.body)
            if t_freeze is None and counters.frames >= 40:
                freeze()
                t_freeze = time.monotonic()
            elif t_freeze is not None and detected is None and not src.connected:
                # from the last frame that reached pfes: frames already in flight (socket and
                # decoder buffers) at the freeze still arrive, and are not a loss
                detected = time.monotonic() - src.last_frame_at
                print(
                    f"loss seen {time.monotonic() - t_freeze:.2f} s after the freeze, "
                    f"{detected:.2f} s after the last frame"
                )
            elif (
                detected is not None
                and frames_at_thaw is None
                and any(not s["connected"] for s in statuses)
            ):
                thaw()
                frames_at_thaw = counters.frames
            elif (
                frames_at_thaw is not None
                and src.connected
                and counters.frames > frames_at_thaw + 15
            ):
                break
    finally:
        thaw()
        pipe.stop()
        th.join(timeout=20)
    while (m := sub.recv(timeout_s=0.3)) is not None:
        (events if m.kind == "event" else statuses).append(m.body)
    assert not th.is_alive()
    return events, statuses, detected


def _check(events, statuses, detected, timeout_s, src):
    assert detected is not None and detected <= timeout_s + 1.0, detected
    down = [s for s in statuses if not s["connected"]]
    assert down and "no frame for" in down[0]["source_error"] and down[0]["losses"] >= 1
    cut = [e for e in events if e["interrupted"]]
    assert len(cut) == 1, events
    ev = cut[0]
    assert ev["schema"] == "pfes.event/2" and ev["onset_frame"] == 5
    assert ev["kind"] == "macro"  # over a second long: not made micro by the cut
    later = [e for e in events if e["seq"] > ev["seq"]]
    assert later and all(e["onset_frame"] > ev["offset_frame"] for e in later)  # a new track
    assert src.reconnects >= 1
    assert statuses[-1]["gaps"] >= 1 and statuses[-1]["interrupted"] == 1


def test_pipeline_cuts_the_open_expression_at_a_frozen_camera():
    cam = _FreezingCam(open_timeout_s=2.0, read_timeout_s=0.6)
    with (
        ZmqPublisher("tcp://127.0.0.1:*") as pub,
        Subscriber(pub.endpoint, ["event.", "status."]) as sub,
    ):
        assert pub.wait_for_subscribers(2)
        pipe = _pipe(cam, pub)
        events, statuses, detected = _watch(
            cam, pipe, sub, freeze=cam.freeze.set, thaw=cam.release.set, timeout_s=0.6
        )
    _check(events, statuses, detected, 0.6, cam)


@pytest.mark.network
@pytest.mark.slow
def test_sigstopped_rtsp_server_is_detected_and_the_open_expression_interrupted(tmp_path):
    from test_rtsp_live import _clip, _gst_missing, _Server

    reason = _gst_missing()
    if reason:
        pytest.skip(reason)
    clip = _clip(tmp_path / "cam.mp4", 900)  # 30 s: longer than the test
    server = _Server(clip, free_port())
    timeout_s = 2.0
    src = RtspSource(
        server.url,
        name="cam",
        open_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
    )
    try:
        with (
            ZmqPublisher("tcp://127.0.0.1:*") as pub,
            Subscriber(pub.endpoint, ["event.", "status."]) as sub,
        ):
            assert pub.wait_for_subscribers(2)
            pipe = _pipe(src, pub)
            stopped = []

            def freeze():
                server.proc.send_signal(signal.SIGSTOP)  # alive, TCP open, silent
                stopped.append(True)

            def thaw():
                if stopped and stopped[-1]:
                    server.proc.send_signal(signal.SIGCONT)
                    stopped.append(False)

            events, statuses, detected = _watch(src, pipe, sub, freeze, thaw, timeout_s)
    finally:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop()
    _check(events, statuses, detected, timeout_s, src)


@pytest.mark.network
def test_rtsp_decode_time_does_not_count_the_wait_for_the_camera(tmp_path):
    from test_rtsp_live import _clip, _gst_missing, _Server

    reason = _gst_missing()
    if reason:
        pytest.skip(reason)
    server = _Server(_clip(tmp_path / "cam.mp4", 300), free_port())
    try:
        with RtspSource(server.url, name="cam", open_timeout_s=5, read_timeout_s=5) as src:
            it = iter(src)
            dec = []
            for _ in range(40):
                next(it)
                dec.append(src.last_decode_s)
    finally:
        server.stop()
    # frames come every 33 ms; decoding a 160x120 frame takes well under a millisecond
    assert float(np.median(dec)) < 0.010, dec
