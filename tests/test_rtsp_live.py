"""The pipeline on a real local RTSP camera (GStreamer RTSP server), events over real ZeroMQ.

Needs the Debian packages python3-gi and gir1.2-gst-rtsp-server-1.0 (scripts/install.sh
--system); skipped with a reason when /usr/bin/python3 cannot import GstRtspServer.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from pipeline_fakes import LandmarkTracker, free_port, make_landmarks, small_net, thresholds_for

from engine.runtime import StreamEngine
from stream.features import FeatureExtractor, extract_features
from stream.pipeline import Pipeline, PipelineConfig
from stream.publish import ZmqPublisher
from stream.source_live import RtspSource
from stream.subscribe import Subscriber
from training.infer import predict_curves

SERVER = Path(__file__).with_name("rtsp_server.py")
SYS_PY = "/usr/bin/python3"
FPS = 30.0

pytestmark = pytest.mark.network


@functools.lru_cache(maxsize=1)
def _gst_missing() -> str:
    code = ("import gi; gi.require_version('Gst', '1.0'); "
            "gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer")
    try:
        r = subprocess.run([SYS_PY, "-c", code], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{SYS_PY} not usable: {e}"
    if r.returncode != 0:
        return (f"{SYS_PY} cannot import gi's GstRtspServer (apt-get install python3-gi "
                "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)")
    return ""


def _clip(path: Path, n_frames: int) -> Path:
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=int(FPS))
    s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
    s.options = {"tune": "zerolatency", "g": "10"}
    for i in range(n_frames):
        img = np.full((120, 160, 3), (i * 7) % 255, np.uint8)
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


class _Server:
    def __init__(self, clip: Path, port: int):
        self.proc = subprocess.Popen([SYS_PY, str(SERVER), str(clip), str(port), "cam"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # blocks until READY (or the process dies)
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


@pytest.fixture
def gst():
    reason = _gst_missing()
    if reason:
        pytest.skip(reason)


def _pipeline(url, n_frames, publisher, reconnect):
    lm, valid = make_landmarks(n_frames, [(20, 30, 45, 0.15), (60, 66, 75, 0.12),
                                          (90, 100, 115, 0.15)], seed=3)
    feats, fvalid = extract_features(lm, valid, FPS)
    net = small_net(feats.shape[1], seed=1)
    det = thresholds_for(predict_curves(net, feats, fvalid)[0])
    src = RtspSource(url, name="cam", open_timeout_s=5, read_timeout_s=2, reconnect=reconnect,
                     backoff_initial_s=0.1, backoff_max_s=0.4)
    # the fake tracker replays a moving face whatever the pixels, so events do not need MediaPipe
    big = {0: (np.concatenate([lm] * 20), np.concatenate([valid] * 20))}
    pipe = Pipeline([src], StreamEngine(net, max_streams=4), det,
                    tracker_factory=lambda s: LandmarkTracker(big),
                    feature_factory=lambda fps: FeatureExtractor(fps), publisher=publisher,
                    config=PipelineConfig(realtime=True, heartbeat_s=0.2))
    return pipe, src


def test_rtsp_pipeline_events_reach_a_subscriber(gst, tmp_path):
    clip = _clip(tmp_path / "cam.mp4", 150)
    server = _Server(clip, free_port())
    try:
        with ZmqPublisher("tcp://127.0.0.1:*") as pub, \
                Subscriber(pub.endpoint, topics=["event.", "status."]) as sub:
            assert pub.wait_for_subscribers(2, timeout_s=5)
            pipe, src = _pipeline(server.url, 150, pub, reconnect=False)
            result = {}
            th = threading.Thread(target=lambda: result.setdefault("r", pipe.run()))
            th.start()
            got, status = {}, []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                m = sub.recv(timeout_s=0.05)
                if m is not None and m.kind == "event":
                    got[m.body["seq"]] = m.body
                elif m is not None:
                    status.append(m.body)
                if not th.is_alive() and len(got) >= len(result["r"].events):
                    break
            th.join(timeout=10)
    finally:
        server.stop()
    rep = result["r"]
    assert rep.streams["cam"]["frames"] > 60  # most of the 5 s clip came through
    assert len(rep.events) >= 1
    assert sorted(got) == [e.seq for e in rep.events]
    assert [got[e.seq]["onset_frame"] for e in rep.events] == [e.onset_frame for e in rep.events]
    assert all(got[s]["stream"] == "cam" and got[s]["latency_ms"] >= 0 for s in got)
    assert any(s.get("frames", 0) > 0 and s["stream"] == "cam" for s in status)


def test_rtsp_server_restart_reconnects(gst, tmp_path):
    clip = _clip(tmp_path / "cam.mp4", 300)
    port = free_port()
    server = _Server(clip, port)
    pipe, src = _pipeline(server.url, 300, None, reconnect=True)
    th = threading.Thread(target=pipe.run)
    th.start()
    counters = pipe.metrics.stream("cam")

    def wait(cond, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.02)
        return False

    try:
        assert wait(lambda: counters.frames > 10)
        server.stop()
        assert wait(lambda: not src.connected)
        frames_down = counters.frames
        server = _Server(clip, port)
        assert wait(lambda: src.connected and counters.frames > frames_down + 10)
        assert src.reconnects >= 1
        assert th.is_alive()  # a lost camera is never fatal
    finally:
        pipe.stop()
        th.join(timeout=10)
        server.stop()
    assert not th.is_alive()
