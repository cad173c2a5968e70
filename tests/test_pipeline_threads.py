"""The pipeline runs numpy's OpenBLAS on one thread and restores the setting afterwards."""

from __future__ import annotations

import pytest
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net

from engine.detector import DetectorConfig
from engine.runtime import StreamEngine
from stream.features import FeatureExtractor
from stream.pipeline import Pipeline, PipelineConfig
from stream.pipeline_worker import openblas_threads, set_openblas_threads


class _Probe:
    """Engine double that records the OpenBLAS thread counts seen while stepping."""

    def __init__(self, engine):
        self.inner = engine
        self.lookahead_frames = engine.lookahead_frames
        self.in_features = engine.in_features
        self.seen: set[tuple[int, ...]] = set()

    def open_slot(self):
        return self.inner.open_slot()

    def close_slot(self, s):
        self.inner.close_slot(s)

    def flush(self, s):
        return self.inner.flush(s)

    def step(self, slots, x, valid):
        self.seen.add(tuple(openblas_threads()))
        return self.inner.step(slots, x, valid)


def _run(blas_threads):
    lm, valid = make_landmarks(40, [], seed=0)
    eng = _Probe(StreamEngine(small_net(67), backend="numpy"))
    pipe = Pipeline(
        [ArraySource(20)], eng, DetectorConfig(),
        tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
        feature_factory=lambda fps: FeatureExtractor(fps),
        config=PipelineConfig(realtime=False, blas_threads=blas_threads),
    )
    pipe.run()
    return eng.seen


def test_one_blas_thread_while_running_then_restored():
    before = openblas_threads()
    if not before:
        pytest.skip("numpy is not linked to a loadable OpenBLAS here")
    set_openblas_threads(2)
    try:
        start = openblas_threads()
        assert _run(1) == {tuple(1 for _ in start)}
        assert openblas_threads() == start
        assert _run(None) == {tuple(start)}  # None leaves the setting alone
    finally:
        set_openblas_threads(before)
