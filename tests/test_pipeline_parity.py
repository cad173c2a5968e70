"""The live pipeline emits exactly what the offline path (training.infer) predicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net, thresholds_for

from engine.checkpoint import Checkpoint
from engine.detector import DetectorConfig
from engine.runtime import StreamEngine
from stream.features import FeatureExtractor, extract_features
from stream.pipeline import Pipeline, PipelineConfig
from training.infer import predict_curves, predict_instances

FPS = 30.0
EVENTS = [(30, 40, 52, 0.12), (90, 94, 99, 0.08), (150, 170, 200, 0.15)]


def _run_live(lm, valid, net, det, backend="torch", **cfg):
    engine = StreamEngine(net, backend=backend, max_streams=4)
    src = ArraySource(len(valid), FPS, name="parity")
    pipe = Pipeline(
        [src], engine, det,
        tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
        feature_factory=lambda fps: FeatureExtractor(fps),
        config=PipelineConfig(realtime=False, **cfg),
    )
    return pipe.run()


@pytest.mark.parametrize("lookahead,backend", [(0, "torch"), (3, "torch"), (2, "numpy")])
def test_live_matches_offline(lookahead, backend):
    lm, valid = make_landmarks(240, EVENTS, seed=1, gaps=[(120, 124)])
    feats, fvalid = extract_features(lm, valid, FPS)
    net = small_net(feats.shape[1], lookahead_frames=lookahead, seed=3)
    inten, _ = predict_curves(net, feats, fvalid)
    det = thresholds_for(inten)
    ckpt = Checkpoint(net=net, meta={"detector": det.to_dict()}, path=Path("mem"))
    offline = predict_instances(ckpt, lm, valid, FPS)
    assert len(offline) >= 2, "test set-up should produce several instances"
    report = _run_live(lm, valid, net, det, backend=backend)
    live = report.events
    assert [(e.onset_frame, e.apex_frame, e.offset_frame, e.kind) for e in live] == [
        (i.onset, i.apex, i.offset, i.kind) for i in offline
    ]
    for e, i in zip(live, offline, strict=True):
        assert abs(e.score - i.score) < 1e-4
        assert abs(e.class_prob - i.class_prob) < 1e-4
        assert e.onset_s == pytest.approx(i.onset / FPS, abs=1e-6)
        assert e.offset_s == pytest.approx(i.offset / FPS, abs=1e-6)
        assert e.emitted_frame >= e.offset_frame
    assert [e.seq for e in live] == list(range(len(live)))
    assert report.streams["parity"]["frames"] == 240
    assert report.streams["parity"]["dropped"] == 0


def test_open_instance_is_flushed_at_stream_end():
    # the last expression is still rising when the clip ends: it must still be emitted
    lm, valid = make_landmarks(100, [(60, 99, 99, 0.4)], seed=2)
    feats, fvalid = extract_features(lm, valid, FPS)
    net = small_net(feats.shape[1], lookahead_frames=2, seed=6)
    inten, _ = predict_curves(net, feats, fvalid)
    # thresholds from this net's curve: nothing before the expression opens a run, its rise
    # does, and the run is still above close_threshold at the last frame
    close = float(inten[:60].max() + inten[-3]) / 2
    det = DetectorConfig(open_threshold=float(inten[-3]), close_threshold=close)
    ckpt = Checkpoint(net=net, meta={}, path=Path("mem"))
    offline = predict_instances(ckpt, lm, valid, FPS, detector=det)
    assert offline and offline[-1].offset == 99, "set-up: the last instance must reach the end"
    live = _run_live(lm, valid, net, det).events
    assert [(e.onset_frame, e.offset_frame) for e in live] == [(i.onset, i.offset) for i in offline]
    assert live[-1].offset_frame == 99
    assert live[-1].emitted_frame == 99  # emitted by the end-of-stream flush


class _Scripted:
    """The real engine, with the intensity replaced by 0.9 on each slot's steps ``high``."""

    def __init__(self, net, high: range):
        self.inner = StreamEngine(net, backend="torch", max_streams=4)
        self.lookahead_frames = self.inner.lookahead_frames
        self.in_features = self.inner.in_features
        self.high = high

    def open_slot(self):
        return self.inner.open_slot()

    def close_slot(self, s):
        self.inner.close_slot(s)

    def _script(self, r):
        r.intensity[:] = [0.9 if f in self.high else 0.0 for f in r.frame]
        return r

    def step(self, slots, x, valid):
        return self._script(self.inner.step(slots, x, valid))

    def flush(self, s):
        return self._script(self.inner.flush(s))


def test_lost_track_is_flushed_and_new_track_starts():
    # track 0 is lost at frame 70 while its expression (frames 50-69) is still open: the
    # pending engine outputs and the open run are emitted at the loss; track 1 appears at
    # frame 100 with a fresh slot and has its own expression (its steps 50-69 = frames 150-169)
    lm, valid = make_landmarks(200, [], seed=4, gaps=[(70, 100)])
    feats, _ = extract_features(lm, valid, FPS)
    engine = _Scripted(small_net(feats.shape[1], lookahead_frames=2, seed=7), range(50, 70))
    tracker_lm = {0: (lm[:100], valid[:100]), 1: (lm, np.r_[np.zeros(100, bool), valid[100:]])}
    pipe = Pipeline(
        [ArraySource(200, FPS)], engine, DetectorConfig(),
        tracker_factory=lambda s: LandmarkTracker(tracker_lm),
        feature_factory=lambda fps: FeatureExtractor(fps),
        # lost at the first frame without the face: no invalid frame closes the run first
        config=PipelineConfig(realtime=False, max_missed_frames=0),
    )
    rep = pipe.run()
    assert engine.inner.open_slots == []  # every slot was flushed and closed
    assert [(e.track, e.onset_frame, e.offset_frame, e.emitted_frame) for e in rep.events] == [
        (0, 50, 69, 70),  # flushed when the loss was declared
        (1, 150, 169, 172),  # closed by frame 170, whose output comes 2 frames later
    ]
    assert [e.seq for e in rep.events] == [0, 1]
    assert rep.streams["fake"]["frames_with_face"] == 200 - 30
