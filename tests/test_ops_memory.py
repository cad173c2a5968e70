"""Bounded memory: the whole-run latency statistics and the report's event list stay the same
size however long the pipeline runs."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net
from test_ops_events_file import _Bursts

from engine.detector import DetectorConfig
from stream.features import FeatureExtractor
from stream.pipeline import Pipeline, PipelineConfig
from stream.pipeline_metrics import STAGES, Metrics

FPS = 30.0


def _feed(m: Metrics, rng: np.random.Generator, n: int) -> None:
    for row in rng.lognormal(0.5, 0.8, size=(n, len(STAGES))).tolist():
        m.record_frame("cam", dict(zip(STAGES, row, strict=True)), 1)
        m.record_event_latency(row[0])


def test_whole_run_statistics_take_constant_memory_and_stay_accurate():
    rng = np.random.default_rng(0)
    m = Metrics()
    _feed(m, rng, 20_000)  # every bin the distribution reaches exists by now
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _feed(m, rng, 100_000)  # about an hour of one 30 fps camera
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown  # bytes; a list of samples would grow by ~20 MB
    st = m.stage_summary()
    assert st["decode"]["n"] == st["compute"]["n"] == 120_000
    # the same draw again, for the reference percentiles
    ref = np.random.default_rng(0).lognormal(0.5, 0.8, size=(120_000, len(STAGES)))
    for j, stage in enumerate(STAGES):
        for q in (50, 90, 99):
            want = np.percentile(ref[:, j], q)
            assert abs(st[stage][f"p{q}"] - want) <= 0.021 * want, (stage, q)
    lat = m.latency_summary()
    assert lat["n"] == 120_000 and abs(lat["p50"] - np.median(ref[:, 0])) <= 0.021 * lat["p50"]


_FACE: dict[str, tuple] = {}


def _run(n_frames: int, keep: int) -> Pipeline:
    net = small_net(FeatureExtractor(FPS).n_features)
    if "lm" not in _FACE:  # made once, outside the measured runs
        _FACE["lm"] = make_landmarks(3000, [], seed=0)
    lm, valid = _FACE["lm"]
    pipe = Pipeline(
        [ArraySource(n_frames, FPS, name="cam")],
        _Bursts(net),
        DetectorConfig(),
        tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
        feature_factory=lambda fps: FeatureExtractor(fps),
        config=PipelineConfig(realtime=False, keep_events=keep),
    )
    pipe.run()
    return pipe


def test_the_report_keeps_the_last_events_and_counts_them_all():
    pipe = _run(600, keep=3)  # an expression every 2 s: 10 events
    rep = pipe.metrics.stream("cam")
    assert rep.events == 10
    assert [e.seq for e in pipe.events] == [7, 8, 9]


def test_a_longer_run_retains_no_more_memory():
    def retained(n_frames: int) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            pipe = _run(n_frames, keep=5)
            gc.collect()
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert pipe.metrics.stream("cam").frames == n_frames
        return size

    _run(10, keep=5)  # the face, the torch and numpy caches: before measuring
    short, long_ = retained(600), retained(3000)
    assert long_ - short < 150_000, (short, long_)  # bytes, for 5x the frames and events
