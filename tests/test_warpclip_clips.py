"""Warped real-photo clips: event timing, ground truth, determinism, encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pfes.errors import InputError
from training.warpclip import ClipSpec, HeadMotion, WarpEvent, event_profile
from training.warpclip_regions import EVENT_KINDS, REGION_LANDMARKS, landmark_displacements


def test_event_profile_shape():
    e = WarpEvent("smile", 10, 16, 30)
    s = event_profile(e, 40)
    assert s.shape == (40,)
    assert np.all(s[:10] == 0) and np.all(s[31:] == 0)
    assert s[16] == 1.0 and np.argmax(s) == 16 and np.sum(s == 1.0) == 1
    assert np.all(np.diff(s[10:17]) > 0) and np.all(np.diff(s[16:31]) < 0)
    assert np.all(s[10:31] > 0)


def test_single_frame_event_profile():
    s = event_profile(WarpEvent("smile", 5, 5, 5), 10)
    assert s.tolist() == [0] * 5 + [1.0] + [0] * 4


def test_event_validation_and_type():
    with pytest.raises(InputError):
        WarpEvent("wink", 0, 1, 2).validate(10)
    with pytest.raises(InputError):
        WarpEvent("smile", 5, 4, 8).validate(10)
    with pytest.raises(InputError):
        WarpEvent("smile", 5, 6, 10).validate(10)
    with pytest.raises(InputError):
        ClipSpec(10, size=(641, 360)).validate()
    assert WarpEvent("smile", 0, 5, 9).resolved_type(30.0) == "micro"  # 10 frames
    assert WarpEvent("smile", 0, 20, 45).resolved_type(30.0) == "macro"
    assert WarpEvent("smile", 0, 5, 9, type="macro").resolved_type(30.0) == "macro"


def test_landmark_displacements_pin_and_move():
    rng = np.random.default_rng(0)
    mesh = rng.uniform(0, 200, size=(478, 2))
    for kind in EVENT_KINDS.values():
        d = landmark_displacements(kind, mesh, iod_px=80.0)
        assert d.shape == (478, 2)
        assert np.all(d[list(kind.pinned)] == 0)
        src = [i for g in kind.groups for i in g.ids if i not in kind.pinned]
        assert np.all(np.linalg.norm(d[src], axis=1) > 0)
    smile = landmark_displacements(EVENT_KINDS["smile"], mesh, 80.0)
    assert smile[61, 1] < 0 and smile[291, 1] < 0  # corners go up
    assert smile[61, 0] < 0 < smile[291, 0]  # and out


# ---- rendering (needs MediaPipe once, for the neutral mesh) ------------------------------------


@pytest.fixture(scope="module")
def mp_ready():
    pytest.importorskip("mediapipe")
    pytest.importorskip("skimage")
    from training.warpclip import neutral_face

    return neutral_face((640, 360))


@pytest.mark.mediapipe
def test_neutral_frames_equal_the_neutral_crop(mp_ready):
    from training.warpclip import render_frames

    image, mesh = mp_ready
    assert image.shape == (360, 640, 3) and mesh.shape == (478, 3)
    frames = list(render_frames(ClipSpec(3)))
    assert all(np.array_equal(f, image) for f in frames)


@pytest.mark.mediapipe
def test_events_move_their_region_only(mp_ready):
    from training.warpclip import render_frames, true_landmarks

    image, mesh = mp_ready
    spec = ClipSpec(12, events=(WarpEvent("smile", 2, 6, 10),))
    frames = list(render_frames(spec))
    diff = np.abs(frames[6].astype(int) - image.astype(int)).sum(-1)
    ys, xs = np.nonzero(diff > 30)
    mouth_y = mesh[[61, 291], 1].mean()
    eye_y = mesh[[468, 473], 1].mean()
    assert len(ys) > 200
    assert np.median(ys) > (mouth_y + eye_y) / 2  # changed pixels sit around the mouth
    assert np.array_equal(frames[0], image) and np.array_equal(frames[11], image)
    lm = true_landmarks(spec)
    assert lm.shape == (12, 478, 2)
    iod = np.linalg.norm(mesh[468, :2] - mesh[473, :2])
    moved = np.linalg.norm(lm[6, 61] - lm[0, 61]) / iod
    assert 0.1 < moved < 0.2
    brow = list(REGION_LANDMARKS["brows"])
    assert np.abs(lm[6, brow] - lm[0, brow]).max() < 0.01 * iod


@pytest.mark.mediapipe
def test_rendering_is_deterministic_and_head_motion_moves_everything(mp_ready):
    from training.warpclip import render_frames, true_landmarks

    spec = ClipSpec(8, head_motion=HeadMotion(6.0, 2.0, 0.02), noise_std=2.0, seed=7)
    a = list(render_frames(spec))
    b = list(render_frames(spec))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    lm = true_landmarks(spec)
    shift = np.linalg.norm(lm[-1] - lm[0], axis=-1)
    assert shift.min() > 0.05  # rigid motion moves every point


@pytest.mark.mediapipe
def test_make_clip_writes_mp4_and_ground_truth(mp_ready, tmp_path):
    from stream.source_file import FileSource
    from training.warpclip import make_clip

    spec = ClipSpec(
        20, events=(WarpEvent("brow_raise", 3, 8, 12, 0.5), WarpEvent("surprise", 13, 15, 19))
    )
    gt = make_clip(spec, tmp_path / "c.mp4", tmp_path / "c.json", preset="ultrafast")
    assert json.loads((tmp_path / "c.json").read_text()) == gt
    assert gt["frames"] == 20 and gt["fps"] == 30.0 and gt["size"] == [640, 360]
    e0, e1 = gt["events"]
    assert (e0["kind"], e0["type"], e0["region"]) == ("brow_raise", "micro", "brows")
    assert (e0["onset"], e0["apex"], e0["offset"], e0["intensity"]) == (3, 8, 12, 0.5)
    assert e1["region"] == "brows+mouth"
    with FileSource(tmp_path / "c.mp4") as src:
        frames = list(src)
        assert src.size == (640, 360) and src.fps == pytest.approx(30.0)
    assert len(frames) == 20
