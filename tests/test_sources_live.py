"""Source registry and the live-source reader thread (newest frame only, reconnects)."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from pipeline_fakes import free_port

from pfes.errors import InputError, SourceError
from stream.source_live import LiveSource, RtspSource, WebcamSource
from stream.sources import SourceSpec, open_source, parse_source, unique_names


def test_parse_source_forms(tmp_path):
    clip = tmp_path / "my clip.mp4"
    clip.write_bytes(b"x")
    assert parse_source(str(clip)) == SourceSpec("file", str(clip), "my_clip")
    assert parse_source("webcam") == SourceSpec("webcam", "0", "webcam0")
    assert parse_source("webcam:2") == SourceSpec("webcam", "2", "webcam2")
    s = parse_source("rtsp://user:pw@10.0.0.5:8554/live/cam1?x=1")
    assert s.kind == "rtsp" and s.name == "10_0_0_5_live_cam1" and "pw" not in s.name
    assert parse_source("lobby=rtsp://h/x") == SourceSpec("rtsp", "rtsp://h/x", "lobby")
    assert unique_names([s, s])[1].name == s.name + "-2"


@pytest.mark.parametrize(
    "spec,match",
    [("http://example/x.mp4", "unsupported source scheme"), ("webcam:abc", "bad webcam"),
     ("/no/such/file.mp4", "not found"), ("", "empty source")],
)
def test_unsupported_sources_are_input_errors(spec, match):
    with pytest.raises(InputError, match=match):
        parse_source(spec)


def test_open_source_builds_the_right_kind(tmp_path):
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    from stream.source_file import FileSource

    assert isinstance(open_source(str(clip), realtime=False), FileSource)
    assert isinstance(open_source("rtsp://127.0.0.1:1/x"), RtspSource)
    assert isinstance(open_source("webcam:3"), WebcamSource)


def test_refused_rtsp_is_source_error_fast():
    src = RtspSource(f"rtsp://127.0.0.1:{free_port()}/x", open_timeout_s=2, read_timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="cannot open rtsp://"):
        src.open()
    assert time.monotonic() - t0 < 4.5


def test_silent_rtsp_times_out_as_source_error():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)  # accepts TCP, never says a word
    try:
        src = RtspSource(f"rtsp://127.0.0.1:{srv.getsockname()[1]}/x", open_timeout_s=1,
                         read_timeout_s=1)
        t0 = time.monotonic()
        with pytest.raises(SourceError):
            src.open()
        assert time.monotonic() - t0 < 4.0
    finally:
        srv.close()


def test_missing_webcam_is_source_error():
    with pytest.raises(SourceError, match="webcam:63"):
        WebcamSource(63, open_timeout_s=2, read_timeout_s=1).open()


class _FakeCam(LiveSource):
    """Delivers frames every ``period_s``; the first connection breaks after ``break_after``."""

    def __init__(self, period_s=0.0, break_after=None, total=200, **kw):
        super().__init__("fake", backoff_initial_s=0.01, backoff_max_s=0.02, **kw)
        self.period_s, self.break_after, self.total = period_s, break_after, total
        self.connects = 0
        self.sent = 0

    def _connect(self):
        self.connects += 1
        self.fps = 100.0
        img = np.zeros((4, 4, 3), np.uint8)
        k = 0
        while self.sent < self.total and not self._stop.is_set():
            if self.break_after is not None and self.connects == 1 and k == self.break_after:
                raise SourceError("connection reset")
            yield (img, lambda a: a, k * 0.01, 0.0)  # pts restart at 0 on each connection
            self.sent += 1
            k += 1
            if self.period_s:
                time.sleep(self.period_s)


def test_slow_consumer_gets_newest_frames_and_drops_are_counted():
    cam = _FakeCam(period_s=0.001, total=300, reconnect=False)
    with cam:
        got = []
        for f in cam:
            got.append(f.index)
            time.sleep(0.01)  # 10x slower than the camera
    assert cam.dropped > 0
    # frames replaced before the first read are counted apart (under load there can be some)
    assert len(got) + cam.dropped + cam.skipped_at_start == cam.decoded == 300
    assert got == sorted(got) and got[-1] == 299  # the newest frame always wins


def test_lost_connection_reconnects_and_keeps_time_monotonic():
    cam = _FakeCam(period_s=0.001, break_after=20, total=60)
    frames = []
    with cam:
        it = iter(cam)
        while len(frames) < 40:
            frames.append(next(it))
        assert cam.reconnects >= 1 and cam.connects >= 2
        cam.interrupt()
    pts = [f.pts_s for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    idx = [f.index for f in frames]
    assert all(b > a for a, b in zip(idx, idx[1:], strict=False))


def test_live_source_interrupt_ends_iteration():
    cam = _FakeCam(period_s=0.005, total=10**6)
    with cam:
        t = threading.Timer(0.1, cam.interrupt)
        t.start()
        n = sum(1 for _ in cam)
        t.join()
    assert n > 0
