"""Tracking-noise measurement (stream/quality.py) and how the live pipeline reports it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net

from engine.detector import DetectorConfig
from engine.runtime import StreamEngine
from pfes.commands.run import _summary
from stream.features import FeatureExtractor, extract_features
from stream.pipeline import Pipeline, PipelineConfig
from stream.publish import NullPublisher
from stream.quality import MIN_FRAMES, NOISY_IOD, brow_jitter
from stream.regions import REGIONS
from training.synth import SynthConfig, generate_video

FPS = 30.0
ROOT = Path(__file__).resolve().parents[1]
BROWS = [k for k in REGIONS if k.startswith("brow_")]


def _jittery_brows(lm: np.ndarray, sd_iod: float, seed: int = 1) -> np.ndarray:
    """Each brow region shifted as one piece by fresh noise every frame (what MediaPipe does
    in dim light), IOD ~ 100 px in make_landmarks."""
    rng = np.random.default_rng(seed)
    out = lm.copy()
    for region in BROWS:
        ids = list(REGIONS[region])
        out[:, ids, :2] += rng.normal(0, sd_iod * 100.0, (len(lm), 1, 2)).astype(np.float32)
    return out


def test_quiet_tracks_are_below_the_threshold_and_jittery_brows_above():
    lm, valid = make_landmarks(300, [(100, 110, 120, 0.08)], seed=0)
    quiet = brow_jitter(*extract_features(lm, valid, FPS))
    noisy = brow_jitter(*extract_features(_jittery_brows(lm, 0.012), valid, FPS))
    assert quiet is not None and noisy is not None
    assert quiet < NOISY_IOD < noisy


def test_the_synthetic_training_data_is_below_the_threshold():
    """The threshold sits above the jitter the bundled model was trained on (its data options,
    at the top of their brow-jitter range)."""
    options = json.loads((ROOT / "scripts" / "default_model_synth.json").read_text())
    top = options["tracker_brow_jitter_iod"][1]
    options["tracker_brow_jitter_iod"] = [top, top]
    for seed in range(4):
        v = generate_video(seed, SynthConfig.from_dict({**options, "video_length_s": [30, 30]}))
        j = brow_jitter(*extract_features(v.landmarks, v.valid, v.fps))
        assert j is not None and j < NOISY_IOD, (seed, j)


def test_too_few_frames_or_foreign_features_give_no_measurement():
    lm, valid = make_landmarks(MIN_FRAMES + 20, [], seed=0)
    feat, ok = extract_features(lm, valid, FPS)
    assert brow_jitter(feat, ok) is not None
    ok[: 30] = False  # 50 valid frames left
    assert brow_jitter(feat, ok) is None
    assert brow_jitter(feat[:, :8], valid) is None  # not the feature layout
    assert brow_jitter(feat, valid[:-1]) is None


def test_pipeline_reports_the_noise_in_its_heartbeat_and_summary(caplog):
    lm, valid = make_landmarks(200, [], seed=0)
    lm = _jittery_brows(lm, 0.015)
    net = small_net(FeatureExtractor(FPS).n_features)
    sent = []

    class _Pub(NullPublisher):
        def send(self, topic, body):
            sent.append((topic, body))

    pipe = Pipeline([ArraySource(200, FPS, name="cam")], StreamEngine(net),
                    DetectorConfig(macro_max_duration_s=60.0),
                    tracker_factory=lambda s: LandmarkTracker({0: (lm, valid)}),
                    feature_factory=lambda fps: FeatureExtractor(fps), publisher=_Pub(),
                    config=PipelineConfig(realtime=False))
    with caplog.at_level("WARNING", logger="stream.pipeline"):
        rep = pipe.run()
    assert rep.streams["cam"]["tracking_noise_iod"] > NOISY_IOD
    warned = [r.getMessage() for r in caplog.records if "noisy face tracking" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("cam: ")
    last = [b for t, b in sent if t == "status.cam"][-1]
    assert last["tracking_noisy"] is True and last["tracking_noise_iod"] > NOISY_IOD
    out = io.StringIO()
    _summary(rep, ["cam"], None, False, out)
    assert "cam: warning: noisy face tracking" in out.getvalue()
    # a clean stream: no warning
    clean = SimpleNamespace(**{**vars(rep), "streams": {"cam": {**rep.streams["cam"],
                                                                 "tracking_noise_iod": 0.003}}})
    out = io.StringIO()
    _summary(clean, ["cam"], None, False, out)
    assert "warning" not in out.getvalue()
