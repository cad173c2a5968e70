"""The real-face stage on three real clips from ../shared/realclips (skipped without them).

Clips: a closed-mouth smile after talking (tpsmm_driving), a posed disgust held from the first
frame to the last (mead_M026_disgusted_l3: an expression under way when the face appears) and
happy speech with smiles that come and go (mead_W036_happy_l3). Real MediaPipe, real model.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "realclips"
CLIPS = ("tpsmm_driving", "mead_M026_disgusted_l3", "mead_W036_happy_l3")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.mediapipe,
    pytest.mark.skipif(not (REAL / "annotations.csv").is_file(),
                       reason="../shared/realclips is not present (licensed clips, not in the repo)"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("realclips")
    for name in CLIPS:
        (d / f"{name}.mp4").symlink_to(REAL / f"{name}.mp4")
    for fname in ("annotations.csv", "spans.csv"):
        with (REAL / fname).open(newline="") as f:
            rows = list(csv.DictReader(f))
        with (d / fname).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(r for r in rows if r["video"] in CLIPS)
    return d


def test_real_face_stage_finds_clear_expressions_including_one_held_from_frame_0(folder, tmp_path):
    from training.realeval import evaluate_real_videos

    res, events = evaluate_real_videos(folder, real_face=True, cache_dir=tmp_path / "cache")
    assert res["any"]["n"] == 4  # the W036 frame-0 smile and micro burst are unsure
    assert res["any"]["tp"] == 4, events
    held = [e for e in events["mead_M026_disgusted_l3"] if e["onset"] == 0]
    assert held and held[0]["offset"] >= 58 and "frown" in held[0]["what"]
    smiles = [e for e in events["tpsmm_driving"] if e["what"].startswith("smile")]
    assert smiles and smiles[0]["moved"][0][0].startswith("mouthSmile")
    assert res["neutral_events"] == 0
    # the network alone (what pfes shipped before the stage) finds fewer of them
    base, _ = evaluate_real_videos(folder, real_face=False, cache_dir=tmp_path / "cache")
    assert base["any"]["tp"] < res["any"]["tp"]
