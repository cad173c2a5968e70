"""The ``--events`` file never takes the spotter down: a full disk (/dev/full), a file size
limit that cuts a line in two, a removed folder; ZeroMQ keeps publishing meanwhile and the
status heartbeat says what is wrong."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net

from engine.detector import DetectorConfig
from engine.runtime import StreamEngine
from stream.events_file import EventWriter
from stream.features import FeatureExtractor
from stream.pipeline import Pipeline, PipelineConfig
from stream.publish import ZmqPublisher
from stream.subscribe import Subscriber

FPS = 30.0
FULL = "/dev/full"
needs_dev_full = pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full")


def _ev(seq: int) -> dict:
    return {"schema": "pfes.event/1", "seq": seq, "note": "x" * 200}


@needs_dev_full
def test_full_disk_is_reported_and_kept_not_raised():
    w = EventWriter(FULL, retry_s=0.0)
    w.write(_ev(0))
    w.write(_ev(1))
    st = w.status()
    assert st["ok"] is False and "No space left" in st["error"]
    assert st["pending"] == 2 and st["written"] == 0 and st["failures"] >= 1
    w.poll()  # retried, still failing, still not raised
    assert w.pending == 2
    w.close()
    assert w.pending == 2  # lost at close: the caller reports it


def test_pending_queue_is_bounded_and_counts_what_it_drops(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    w = EventWriter(d / "ev.jsonl", retry_s=3600, max_pending=3)
    shutil.rmtree(d)
    for i in range(5):
        w.write(_ev(i))
    assert w.pending == 3 and w.lost == 2 and not w.status()["ok"]
    w.close()


def test_removed_folder_is_noticed_and_the_file_created_again(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    p = d / "ev.jsonl"
    w = EventWriter(p, retry_s=0.0)
    w.write(_ev(0))
    shutil.rmtree(d)
    w.write(_ev(1))  # would land in the deleted file; noticed instead
    assert not w.status()["ok"] and w.pending == 1
    d.mkdir()
    w.poll()
    assert w.status()["ok"] and w.pending == 0
    w.write(_ev(2))
    w.close()
    assert [json.loads(x)["seq"] for x in p.read_text().splitlines()] == [1, 2]


def test_a_short_write_leaves_no_partial_line(tmp_path):
    # a real short write: the kernel takes only the bytes below the file size limit
    p = tmp_path / "ev.jsonl"
    code = textwrap.dedent(f"""
        import json, resource
        from stream.events_file import EventWriter
        resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))
        w = EventWriter({str(p)!r}, retry_s=0.0)
        for i in range(5):
            w.write({{"seq": i, "note": "x" * 240}})
        print(json.dumps(w.status()))
        w.close()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    data = p.read_bytes()
    assert st["written"] == 2 and st["pending"] == 3 and not st["ok"]
    assert data.endswith(b"\n") and len(data) < 600
    assert [json.loads(x)["seq"] for x in data.splitlines()] == [0, 1]


class _Bursts:
    """Engine double: intensity high for frames 10-29 of every 60 (an expression each 2 s)."""

    lookahead_frames = 0

    def __init__(self, net):
        self.inner = StreamEngine(net, max_streams=8)
        self.in_features = self.inner.in_features

    def open_slot(self):
        return self.inner.open_slot()

    def close_slot(self, s):
        self.inner.close_slot(s)

    def flush(self, s):
        return self.inner.flush(s)

    def step(self, slots, x, valid):
        r = self.inner.step(slots, x, valid)
        r.intensity[:] = np.where((r.frame % 60 >= 10) & (r.frame % 60 < 30), 0.9, 0.0)
        return r


class _Paced(ArraySource):
    def frames(self):
        for f in super().frames():
            time.sleep(0.003)
            yield f


@needs_dev_full
def test_full_disk_keeps_zeromq_publishing_and_says_so_in_status():
    net = small_net(FeatureExtractor(FPS).n_features)
    lm, valid = make_landmarks(400, [], seed=0)
    w = EventWriter(FULL, retry_s=0.05)
    with (
        ZmqPublisher("tcp://127.0.0.1:*") as pub,
        Subscriber(pub.endpoint, ["event.", "status."]) as sub,
    ):
        assert pub.wait_for_subscribers(2)
        pipe = Pipeline(
            [_Paced(300, FPS, name="cam")],
            _Bursts(net),
            DetectorConfig(),
            tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
            feature_factory=lambda fps: FeatureExtractor(fps),
            publisher=pub,
            writer=w,
            config=PipelineConfig(realtime=False, heartbeat_s=0.1),
        )
        rep = pipe.run()
        events, status = [], None
        end = time.monotonic() + 5
        while time.monotonic() < end and len(events) < len(rep.events):
            m = sub.recv(timeout_s=0.1)
            if m is None:
                continue
            if m.kind == "event":
                events.append(m.body["seq"])
            else:
                status = m.body
        while (m := sub.recv(timeout_s=0.2)) is not None:
            if m.kind == "status":
                status = m.body
    w.close()
    assert len(rep.events) >= 4 and not rep.errors
    assert events == list(range(len(rep.events)))  # every event reached the subscriber
    assert status is not None
    ef = status["events_file"]
    assert ef["ok"] is False and "No space left" in ef["error"]
    assert ef["pending"] == len(rep.events) and ef["failures"] >= 2 and ef["written"] == 0


@needs_dev_full
@pytest.mark.slow
@pytest.mark.mediapipe
def test_pfes_run_on_a_full_disk_keeps_going_and_exits_0(tmp_path):
    pytest.importorskip("mediapipe")
    from pfes.commands.run import DEMO_CLIP

    if not DEMO_CLIP.is_file():
        pytest.skip("bundled demo clip not built")
    pfes = os.path.join(os.path.dirname(sys.executable), "pfes")
    r = subprocess.run(
        [pfes, "run", "--fast", "--publish", "tcp://127.0.0.1:*", "--events", FULL],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    printed = [x for x in r.stdout.splitlines() if x.startswith("demo ") and "latency" in x]
    assert printed  # the console kept going
    assert "events file /dev/full: write failed (No space left on device)" in r.stderr
    assert f"{len(printed)} event(s) could not be written to /dev/full" in r.stderr
