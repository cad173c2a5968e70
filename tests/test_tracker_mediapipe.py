"""MediaPipe trackers on real pixels (warped astronaut clips): ids, coverage, gaps, Tasks API."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("skimage")

from pfes.errors import ModelError  # noqa: E402
from stream.source_file import FileSource  # noqa: E402
from stream.tracker import make_tracker  # noqa: E402
from training.warpclip import ClipSpec, HeadMotion, WarpEvent, make_clip, neutral_face  # noqa: E402

pytestmark = pytest.mark.mediapipe


@pytest.fixture(scope="module")
def warped_clip(tmp_path_factory):
    spec = ClipSpec(
        n_frames=90,
        events=(WarpEvent("smile", 10, 25, 45), WarpEvent("brow_raise", 55, 62, 70, 0.5)),
        head_motion=HeadMotion(translate_px=8.0, rotate_deg=3.0, scale=0.03),
        seed=3,
    )
    path = tmp_path_factory.mktemp("mp") / "clip.mp4"
    make_clip(spec, path, preset="ultrafast")
    return path


def test_stable_id_and_coverage_on_warped_clip(warped_clip):
    ids, found, n = set(), 0, 0
    with FileSource(warped_clip) as src, make_tracker("mediapipe", max_faces=2) as tr:
        for f in src:
            faces = tr.process(f.image, int(f.pts_s * 1000))
            n += 1
            found += bool(faces)
            ids.update(face.track_id for face in faces)
            for face in faces:
                assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
                x0, y0, x1, y1 = face.bbox
                assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360
    assert n == 90
    assert found / n >= 0.99
    assert ids == {0}


def test_landmarks_are_in_pixels_with_z_on_x_scale():
    image, mesh = neutral_face((640, 360))
    with make_tracker("mediapipe") as tr:
        face = tr.process(np.array(image), 0)[0]
    lm = face.landmarks
    iod = np.linalg.norm(lm[468, :2] - lm[473, :2])
    assert 60 < iod < 100  # face about 165 px wide in a 640x360 crop
    assert np.abs(lm[:, :2] - mesh[:, :2]).max() < 8  # tracking == static measurement
    assert np.ptp(lm[:, 2]) < 1.0 * np.ptp(lm[:, 0])  # depth range on the x scale, not normalised


def _two_faces(image: np.ndarray) -> np.ndarray:
    """Two copies of the face side by side (320 px each) in a 640x360 frame."""
    import cv2

    face = cv2.resize(image[20:340, 160:480], (320, 320), interpolation=cv2.INTER_AREA)
    out = np.full((360, 640, 3), 200, np.uint8)
    out[20:340, :320] = face
    out[20:340, 320:] = face
    return out


def test_two_faces_get_two_ids():
    image, _ = neutral_face((640, 360))
    two = _two_faces(np.array(image))
    seen = []
    with make_tracker("mediapipe", max_faces=2) as tr:
        for i in range(8):
            seen.append(tr.process(two, 33 * i))
    last = seen[-1]
    assert len(last) == 2
    assert {f.track_id for f in last} == {0, 1}
    assert last[0].bbox[0] < 320 <= last[1].bbox[0] or last[1].bbox[0] < 320 <= last[0].bbox[0]
    assert all({f.track_id for f in s} <= {0, 1} for s in seen)


def test_face_reappearing_after_long_gap_gets_new_id():
    image, _ = neutral_face((640, 360))
    image = np.array(image)
    blank = np.full_like(image, 128)
    with make_tracker("mediapipe", max_missed_frames=5) as tr:
        ids = []
        for t, img in enumerate(
            [image] * 4 + [blank] * 3 + [image] * 3 + [blank] * 8 + [image] * 3
        ):
            ids.append([f.track_id for f in tr.process(img, 33 * t)])
    assert ids[:4] == [[0]] * 4
    assert ids[4:7] == [[]] * 3
    assert ids[7:10] == [[0]] * 3  # 3 missed frames < 5: same track
    assert ids[-3:] == [[1]] * 3  # 8 missed frames: a new track


def _bundled_task(tmp: Path) -> Path:
    """A .task bundle made of mediapipe's own bundled tflite models (plumbing test only)."""
    import mediapipe

    mods = Path(mediapipe.__file__).parent / "modules"
    task = tmp / "face_landmarker.task"
    with zipfile.ZipFile(task, "w", compression=zipfile.ZIP_STORED) as z:
        z.write(
            mods / "face_detection" / "face_detection_short_range.tflite", "face_detector.tflite"
        )
        z.write(mods / "face_landmark" / "face_landmark.tflite", "face_landmarks_detector.tflite")
    return task


def test_tasks_tracker_runs_with_repeated_timestamps(tmp_path):
    image, _ = neutral_face((640, 360))
    with make_tracker("tasks", model_path=_bundled_task(tmp_path)) as tr:
        for _ in range(3):
            faces = tr.process(np.array(image), 0)  # repeated timestamp: must not raise
            for f in faces:
                assert f.landmarks.shape == (478, 3)
        assert tr._last_ts == 2


def test_tasks_tracker_corrupt_model_is_model_error(tmp_path):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(ModelError):
        make_tracker("tasks", model_path=bad)
