"""The Prometheus endpoint: scraped over HTTP and read with the Prometheus text parser, after a
pipeline run with test doubles, and live from ``pfes run --metrics-port``."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net
from prometheus_client.parser import text_string_to_metric_families
from test_pipeline_lifecycle import FPS, _AlwaysHigh

from engine.detector import DetectorConfig
from pfes.cli import main
from pfes.commands.run import DEMO_CLIP
from stream.features import FeatureExtractor
from stream.pipeline import Pipeline, PipelineConfig
from stream.pipeline_metrics import STAGES
from stream.prometheus import MetricsServer, PromMetrics


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_a_pipeline_run():
    lm, valid = make_landmarks(200, [], seed=0)
    net = small_net(FeatureExtractor(FPS).n_features)
    prom = PromMetrics()
    src = ArraySource(40, FPS, name="cam")
    pipe = Pipeline(
        [src],
        _AlwaysHigh(net),
        DetectorConfig(macro_max_duration_s=60.0),
        tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
        feature_factory=lambda fps: FeatureExtractor(fps),
        on_event=prom.count_event,
        config=PipelineConfig(realtime=False),
        metrics=prom,
    )
    with MetricsServer(prom, [src], port=0) as server:
        rep = pipe.run()
        m = _scrape(server.url)
    cam = (("stream", "cam"),)
    assert m[("pfes_frames_total", cam)] == 40
    assert m[("pfes_frames_with_face_total", cam)] == 40
    assert m[("pfes_dropped_frames_total", (("stream", "cam"), ("where", "queue")))] == 0
    assert m[("pfes_faces", cam)] == 1
    assert m[("pfes_source_reconnects_total", cam)] == 0
    assert m[("pfes_source_connected", cam)] == 1 and m[("pfes_source_ended", cam)] == 1
    kinds = {ev.kind for ev in rep.events}
    assert len(rep.events) == 1
    for kind in kinds:
        key = ("pfes_events_total", (("kind", kind), ("stream", "cam")))
        assert m[key] == sum(e.kind == kind for e in rep.events)
    assert m[("pfes_event_latency_seconds_count", cam)] == 1
    for stage in (*STAGES, "compute"):
        lab = (("stage", stage), ("stream", "cam"))
        assert m[("pfes_stage_latency_seconds_count", lab)] == 40
        inf = tuple(sorted((*lab, ("le", "+Inf"))))
        assert m[("pfes_stage_latency_seconds_bucket", inf)] == 40
    # the engine step really was timed: its sum is positive and below a second per frame
    eng = m[("pfes_stage_latency_seconds_sum", (("stage", "engine"), ("stream", "cam")))]
    assert 0 < eng < 40


@pytest.mark.skipif(not DEMO_CLIP.is_file(), reason="bundled demo clip not built")
def test_metrics_port_in_use_is_exit_2(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = main(["run", "--publish", "off", "--metrics-port", str(port), "--fast"])
    assert rc == 2
    assert "cannot serve metrics" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.mediapipe
@pytest.mark.skipif(not DEMO_CLIP.is_file(), reason="bundled demo clip not built")
def test_pfes_run_serves_metrics_while_it_runs():
    pytest.importorskip("mediapipe")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen(
        [sys.executable, "-m", "pfes", "run", "--publish", "off", "--metrics-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stderr is not None
        for line in p.stderr:
            if line.startswith("metrics on "):
                url = line.split()[2]
                break
        assert url == f"http://127.0.0.1:{port}/metrics"
        end = time.monotonic() + 60
        m: dict = {}
        demo = (("stream", "demo"),)
        while time.monotonic() < end:
            m = _scrape(url)
            if sum(v for (n, _), v in m.items() if n == "pfes_events_total") >= 1:
                break
            time.sleep(0.5)
        assert m[("pfes_frames_total", demo)] > 60  # real time: the first event is at ~4 s
        assert m[("pfes_source_ended", demo)] == 0
        assert m[("pfes_stage_latency_seconds_count", (("stage", "landmarks"), *demo))] > 60
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=30)
        if p.stderr is not None:
            p.stderr.close()
    assert rc == 0
