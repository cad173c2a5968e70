"""training.dataset: the dataset directory and landmark file contracts (design.md)."""

from __future__ import annotations

import numpy as np
import pytest

from pfes.errors import InputError
from training.dataset import (
    N_LANDMARKS,
    Annotation,
    LandmarkVideo,
    load_dataset,
    load_landmarks,
    save_landmarks,
)

HEADER = "subject,video,onset,apex,offset,type"


def _video(frames: int = 20, seed: int = 0, invalid: tuple[int, ...] = ()) -> LandmarkVideo:
    rng = np.random.default_rng(seed)
    lm = rng.normal(200, 30, size=(frames, N_LANDMARKS, 3)).astype(np.float32)
    valid = np.ones(frames, bool)
    valid[list(invalid)] = False
    lm[~valid] = np.nan
    return LandmarkVideo(lm, valid, 25.0, (320, 240))


def _dataset(root, rows: list[str], header: str = HEADER, videos=("s1_a", "s2_a")):
    for i, v in enumerate(videos):
        save_landmarks(root / "landmarks" / f"{v}.npz", _video(seed=i))
    (root / "annotations.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def _error(fn, *args) -> str:
    with pytest.raises(InputError) as ei:
        fn(*args)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


# -- landmark files ----------------------------------------------------------------------------

def test_landmarks_round_trip(tmp_path):
    v = _video(invalid=(3, 4))
    save_landmarks(tmp_path / "sub" / "v.npz", v)  # creates the folder
    back = load_landmarks(tmp_path / "sub" / "v.npz")
    assert back.landmarks.dtype == np.float32 and back.landmarks.shape == (20, N_LANDMARKS, 3)
    assert back.valid.dtype == bool and back.valid.tolist() == v.valid.tolist()
    np.testing.assert_array_equal(back.landmarks[v.valid], v.landmarks[v.valid])
    assert np.isnan(back.landmarks[~v.valid]).all()
    assert back.fps == 25.0 and back.image_size == (320, 240) and back.frames == 20
    with np.load(tmp_path / "sub" / "v.npz") as z:  # the on-disk names of the contract
        assert set(z.files) == {"landmarks", "valid", "fps", "image_size"}


def test_save_is_deterministic(tmp_path):
    save_landmarks(tmp_path / "a.npz", _video())
    save_landmarks(tmp_path / "b.npz", _video())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_nan_frames_are_invalid_even_if_marked_valid(tmp_path):
    v = _video()
    lm = v.landmarks.copy()
    lm[5, 10, 0] = np.nan  # one bad coordinate spoils the frame
    lm[7] = np.inf
    np.savez(tmp_path / "v.npz", landmarks=lm, valid=np.ones(20, bool), fps=25.0,
             image_size=np.array([320, 240]))
    back = load_landmarks(tmp_path / "v.npz")
    assert np.flatnonzero(~back.valid).tolist() == [5, 7]


@pytest.mark.parametrize("shape", [(20, 468, 3), (20, N_LANDMARKS, 2), (N_LANDMARKS, 3)])
def test_wrong_landmark_shape(tmp_path, shape):
    np.savez(tmp_path / "v.npz", landmarks=np.zeros(shape, np.float32),
             valid=np.ones(shape[0], bool), fps=30.0, image_size=np.array([64, 64]))
    msg = _error(load_landmarks, tmp_path / "v.npz")
    assert "landmarks shape" in msg and "v.npz" in msg


def test_bad_valid_fps_missing_array_and_garbage(tmp_path):
    lm = np.zeros((10, N_LANDMARKS, 3), np.float32)
    np.savez(tmp_path / "a.npz", landmarks=lm, valid=np.ones(9, bool), fps=30.0,
             image_size=np.array([64, 64]))
    assert "valid shape" in _error(load_landmarks, tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", landmarks=lm, valid=np.ones(10, bool), fps=0.0,
             image_size=np.array([64, 64]))
    assert "fps" in _error(load_landmarks, tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", landmarks=lm, fps=30.0, image_size=np.array([64, 64]))
    assert "missing array" in _error(load_landmarks, tmp_path / "c.npz")
    (tmp_path / "d.npz").write_bytes(b"not a zip file at all")
    assert "not a readable landmark" in _error(load_landmarks, tmp_path / "d.npz")
    assert "not found" in _error(load_landmarks, tmp_path / "none.npz")


# -- dataset directories -----------------------------------------------------------------------

def test_dataset_round_trip(tmp_path):
    root = _dataset(tmp_path, ["s1,s1_a,2,4,9,macro", "s2,s2_a,1,2,3,micro"],
                    videos=("s1_a", "s2_a", "s3_quiet"))
    ds = load_dataset(root)
    assert ds.videos == ["s1_a", "s2_a", "s3_quiet"]
    assert ds.subjects == ["s1", "s2", "s3"]  # unannotated video: subject from its name
    assert ds.annotations == [Annotation("s1", "s1_a", 2, 4, 9, "macro"),
                              Annotation("s2", "s2_a", 1, 2, 3, "micro")]
    assert ds.annotations_of("s3_quiet") == [] and ds.videos_of(["s2"]) == ["s2_a"]
    assert ds.landmarks("s1_a").frames == 20 and list(ds) == ds.videos


def test_point_column_kind_case_and_spaces(tmp_path):
    root = _dataset(tmp_path, ["s1, s1_a ,2,4,9,MACRO,5", "s2,s2_a,1,2,3,micro,"],
                    header=HEADER + ",point")
    a, b = load_dataset(root).annotations
    assert (a.video, a.kind, a.point) == ("s1_a", "macro", 5)
    assert b.point is None


def test_missing_columns(tmp_path):
    root = _dataset(tmp_path, ["s1,s1_a,2,4,macro"], header="subject,video,onset,apex,type")
    msg = _error(load_dataset, root)
    assert "missing columns ['offset']" in msg and "annotations.csv" in msg


def test_onset_after_apex(tmp_path):
    root = _dataset(tmp_path, ["s1,s1_a,2,4,9,macro", "s1,s1_a,8,5,9,micro"])
    msg = _error(load_dataset, root)
    assert "annotations.csv:3" in msg and "onset <= apex <= offset" in msg


@pytest.mark.parametrize("row,match", [
    ("s1,s1_a,-1,4,9,macro", "onset <= apex"),
    ("s1,s1_a,2,4,3,macro", "onset <= apex"),
    ("s1,s1_a,two,4,9,macro", "'onset' must be an integer"),
    ("s1,s1_a,2,4,9,smile", "macro or micro"),
    ("s1,s1_a,2,4", "macro or micro"),
])
def test_bad_rows(tmp_path, row, match):
    assert match in _error(load_dataset, _dataset(tmp_path, [row]))


def test_unknown_video(tmp_path):
    root = _dataset(tmp_path, ["s1,s1_a,2,4,9,macro", "s9,s9_x,1,2,3,micro"])
    msg = _error(load_dataset, root)
    assert "'s9_x'" in msg and "landmarks/s9_x.npz" in msg


def test_video_under_two_subjects(tmp_path):
    root = _dataset(tmp_path, ["s1,s1_a,2,4,9,macro", "s2,s1_a,11,12,13,micro"])
    assert "two subjects" in _error(load_dataset, root)


def test_missing_dir_csv_and_landmarks(tmp_path):
    assert "not found" in _error(load_dataset, tmp_path / "nope")
    assert "no annotations.csv" in _error(load_dataset, tmp_path)
    (tmp_path / "annotations.csv").write_text(HEADER + "\n")
    assert "no landmark files" in _error(load_dataset, tmp_path)


def test_unreadable_csv_and_bom(tmp_path):
    root = _dataset(tmp_path, ["s1,s1_a,2,4,9,macro"])
    (root / "annotations.csv").write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\ns1,s1_a,2,4,9,macro\n"
                                           .encode())
    assert len(load_dataset(root).annotations) == 1  # a spreadsheet's BOM is fine
    (root / "annotations.csv").write_bytes(HEADER.encode() + b"\n\xff\xfe\x00\x81\n")
    assert "not a readable UTF-8 CSV" in _error(load_dataset, root)
