"""``pfes extract`` and the landmark .npz format."""

from __future__ import annotations

import numpy as np
import pytest

from pfes.cli import main as pfes_main
from pfes.errors import InputError
from stream.extract import (
    LandmarkSeries,
    PrimaryTrack,
    extract_landmarks,
    load_landmarks_npz,
    save_landmarks_npz,
)
from stream.tracker import FaceTracker, TrackedFace
from training.warpclip import encode_mp4


@pytest.fixture(scope="module")
def grey_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("ex") / "grey.mp4"
    frames = (np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12))
    encode_mp4(frames, path, fps=30.0, preset="ultrafast")
    return path


class _EveryOtherFrame(FaceTracker):
    """Fake tracker: a fixed face on even frames, none on odd ones."""

    def __init__(self):
        super().__init__(max_faces=1)
        self.calls = 0

    def _detect(self, image, timestamp_ms):
        self.calls += 1
        if self.calls % 2 == 0:
            return []
        m = np.zeros((478, 3), np.float32)
        m[:, 0] = np.linspace(10, 50, 478)
        m[:, 1] = np.linspace(5, 40, 478)
        return [m]


def test_extract_with_a_fake_tracker_marks_missing_frames(grey_clip, tmp_path):
    series = extract_landmarks(grey_clip, tracker=_EveryOtherFrame())
    assert series.n_frames == 12 and series.fps == pytest.approx(30.0)
    assert series.image_size == (64, 48)
    assert series.valid.tolist() == [True, False] * 6
    assert np.isnan(series.landmarks[1]).all() and not np.isnan(series.landmarks[0]).any()
    assert series.track_id.tolist() == [0, -1] * 6
    out = save_landmarks_npz(series, tmp_path / "sub" / "x.npz")
    with np.load(out) as z:
        assert z["landmarks"].dtype == np.float32 and z["landmarks"].shape == (12, 478, 3)
        assert z["valid"].dtype == bool and z["fps"].shape == ()
        assert z["image_size"].tolist() == [64, 48]
    back = load_landmarks_npz(out)
    np.testing.assert_array_equal(back.landmarks, series.landmarks)
    np.testing.assert_array_equal(back.valid, series.valid)


def test_load_rejects_malformed_files(tmp_path):
    with pytest.raises(InputError):
        load_landmarks_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        landmarks=np.zeros((3, 468, 3), np.float32),
        valid=np.ones(3, bool),
        fps=30.0,
        image_size=np.array([64, 48]),
    )
    with pytest.raises(InputError, match="malformed"):
        load_landmarks_npz(bad)
    with pytest.raises(InputError):
        save_landmarks_npz(
            LandmarkSeries(
                np.zeros((0, 478, 3), np.float32),
                np.zeros(0, bool),
                30.0,
                (1, 1),
                np.zeros(0),
                np.zeros(0, np.int32),
            ),
            tmp_path / "x.txt",
        )


def _face(tid: int, size: float) -> TrackedFace:
    return TrackedFace(tid, np.zeros((478, 3), np.float32), (0.0, 0.0, size, size), False)


def test_primary_track_follows_first_face_until_its_track_ends():
    p = PrimaryTrack()
    assert p.push([_face(0, 50), _face(1, 100)], [0, 1]).track_id == 1  # largest first
    assert p.push([_face(0, 50), _face(1, 100)], [0, 1]).track_id == 1
    assert p.push([_face(0, 50)], [0, 1]) is None  # primary missed but still alive
    assert p.push([_face(0, 50)], [0]).track_id == 0  # primary ended: switch


def test_cli_missing_input_exit_2(tmp_path, capsys):
    rc = pfes_main(["extract", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o.npz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_unreadable_input_exit_3(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 200)
    rc = pfes_main(["extract", str(bad), "--out", str(tmp_path / "o.npz"), "--quiet"])
    assert rc == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_bad_arguments_exit_2(grey_clip, tmp_path, capsys):
    assert pfes_main(["extract", str(grey_clip), "--out", str(tmp_path / "o.txt")]) == 2
    assert (
        pfes_main(["extract", str(grey_clip), "--out", str(tmp_path / "o.npz"), "--max-faces", "0"])
        == 2
    )
    with pytest.raises(SystemExit) as e:
        pfes_main(["extract", str(grey_clip)])  # --out is required
    assert e.value.code == 2


@pytest.mark.mediapipe
def test_cli_extract_writes_valid_npz(tmp_path, capsys):
    pytest.importorskip("mediapipe")
    pytest.importorskip("skimage")
    from training.warpclip import ClipSpec, HeadMotion, WarpEvent, make_clip

    spec = ClipSpec(
        30, events=(WarpEvent("smile", 5, 12, 20, 0.6),), head_motion=HeadMotion(4.0, 1.0, 0.01)
    )
    clip = tmp_path / "c.mp4"
    make_clip(spec, clip, preset="ultrafast")
    out = tmp_path / "c.npz"
    assert pfes_main(["extract", str(clip), "--out", str(out)]) == 0
    assert "face in 30 (100.0%)" in capsys.readouterr().out
    s = load_landmarks_npz(out)
    assert s.landmarks.shape == (30, 478, 3) and s.valid.all()
    assert s.image_size == (640, 360) and s.fps == pytest.approx(30.0)
    assert np.isfinite(s.landmarks).all()
    x, y = s.landmarks[..., 0], s.landmarks[..., 1]
    assert 150 < x.min() and x.max() < 490 and 20 < y.min() and y.max() < 360
