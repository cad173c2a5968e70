"""Real pixels end to end: warped astronaut clip -> MediaPipe -> stream.features.

The warped region's displacement features must peak at the injected apex, and head motion
alone (translation, roll, scale) must stay near the still-face noise floor.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("skimage")

from stream.extract import extract_landmarks  # noqa: E402
from stream.features import FEATURE_NAMES, extract_features  # noqa: E402
from training.warpclip import ClipSpec, HeadMotion, WarpEvent, make_clip  # noqa: E402

pytestmark = pytest.mark.mediapipe

N_FRAMES = 60
HEAD = HeadMotion(translate_px=6.0, rotate_deg=2.0, scale=0.02)
REGIONS = {
    "mouth": ("mouth_corner_r", "mouth_corner_l"),
    "brows": ("brow_inner_r", "brow_inner_l", "brow_outer_r", "brow_outer_l"),
    "eyes": ("upper_lid_r", "upper_lid_l"),
}


def _region_curve(feats: np.ndarray, region: str) -> np.ndarray:
    """(T,) mean displacement magnitude (IOD) of the region's centroids from neutral."""
    names = REGIONS[region]
    cols = [FEATURE_NAMES.index(f"{r}.{ax}") for r in names for ax in ("dx", "dy")]
    x = feats[:, cols].reshape(len(feats), len(names), 2)
    return np.linalg.norm(x, axis=-1).mean(axis=-1)


def _features(tmp_path, spec: ClipSpec, name: str) -> np.ndarray:
    path = tmp_path / f"{name}.mp4"
    make_clip(spec, path, preset="ultrafast")
    series = extract_landmarks(path)
    assert series.valid.mean() >= 0.99
    feats, valid = extract_features(series.landmarks, series.valid, series.fps)
    assert feats.shape == (N_FRAMES, len(FEATURE_NAMES)) and valid.all()
    return feats


@pytest.fixture(scope="module")
def still_noise(tmp_path_factory):
    feats = _features(tmp_path_factory.mktemp("rp"), ClipSpec(N_FRAMES, seed=2), "still")
    return {r: float(_region_curve(feats, r)[5:].max()) for r in REGIONS}


@pytest.mark.parametrize(
    ("kind", "region", "intensity"),
    [("smile", "mouth", 0.5), ("brow_raise", "brows", 0.5), ("eye_close", "eyes", 0.5)],
)
def test_warped_region_peaks_at_the_injected_apex(tmp_path, still_noise, kind, region, intensity):
    onset, apex, offset = 25, 32, 40  # a 16-frame, half-intensity micro expression
    spec = ClipSpec(N_FRAMES, events=(WarpEvent(kind, onset, apex, offset, intensity),), seed=4)
    curve = _region_curve(_features(tmp_path, spec, kind), region)
    assert abs(int(np.argmax(curve)) - apex) <= 2, curve.round(3)
    assert curve.max() > 3 * still_noise[region]
    assert curve[:onset].max() < 0.5 * curve.max()  # nothing before the onset


def test_smile_apex_found_under_head_motion(tmp_path):
    spec = ClipSpec(
        N_FRAMES, events=(WarpEvent("smile", 25, 32, 40, 0.5),), head_motion=HEAD, seed=5
    )
    curve = _region_curve(_features(tmp_path, spec, "smile_head"), "mouth")
    assert abs(int(np.argmax(curve)) - 32) <= 2, curve.round(3)


def test_head_motion_alone_gives_no_peak_above_noise(tmp_path, still_noise):
    feats = _features(tmp_path, ClipSpec(N_FRAMES, head_motion=HEAD, seed=5), "head")
    for region in REGIONS:
        peak = float(_region_curve(feats, region)[5:].max())
        # a half-intensity micro expression measures 0.02-0.05 IOD on these regions
        assert peak < max(3 * still_noise[region], 0.015), (region, peak, still_noise[region])
