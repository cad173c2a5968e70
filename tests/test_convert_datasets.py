"""``pfes convert``: CAS(ME)^2 / SAMM-LV releases (frames + label workbook) -> dataset dirs.

The releases are licensed, so the tests build look-alike releases: the same folder and file
naming, workbooks written by openpyxl with the same sheet layout, and frames that are either
plain images (fake tracker) or real-pixel warped photos (MediaPipe).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pfes.cli import main as pfes_main
from pfes.errors import InputError
from stream.extract import extract_landmarks
from stream.source_images import ImageSequenceSource, list_images
from stream.tracker import FaceTracker
from training.convert import Label, VideoJob, convert_videos, map_labels
from training.dataset import load_dataset
from training.real_datasets import casme2_jobs, frame_number, samm_lv_jobs, step_for
from training.xlsx import column_index, read_xlsx

openpyxl = pytest.importorskip("openpyxl")
cv2 = pytest.importorskip("cv2")


def _write_image(path: Path, value: int, size=(48, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size[1], size[0], 3), value % 256, np.uint8)
    assert cv2.imwrite(str(path), img)


def _workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return path


def _casme2_release(root: Path, n_frames: int = 40) -> Path:
    """Two subjects; s15 has two videos (one unlabelled), s16 one; img numbers from 1."""
    for folder in ("s15/15_0101disgustingteeth", "s15/15_0508funnyinnovations",
                   "s16/16_0401girlcrashing"):
        for i in range(1, n_frames + 1):
            _write_image(root / "rawpic" / folder / f"img{i}.jpg", i)
    _workbook(root / "CAS(ME)^2code_final.xlsx", {
        "CASFEcode_final": [
            [1, "disgust1_1", 3, 8, 20, "4+10", "negative", "macro-expression", "disgust"],
            [1, "disgust1_2", 25, 0, 31, "12", "positive", "micro-expression", "happy"],
            [2, "anger1_1", 5, 12, 0, "4", "negative", "macro-expression", "anger"],
            [2, "anger1_2", 900, 905, 910, "4", "negative", "micro-expression", "anger"],
        ],
        "naming rule1": [[15, "s15", 1], [16, "s16", 2]],
        "naming rule2": [["0101", "disgust1"], ["0401", "anger1"], ["0508", "happy5"]],
    })
    return root


def _samm_release(root: Path, n_frames: int = 70) -> Path:
    for video in ("006_1", "007_3"):
        for i in range(1, n_frames + 1):
            _write_image(root / "SAMM_longvideos" / video / f"{video}_{i:04d}.jpg", i)
    title = [["SAMM Long Videos"], [], ["Release notes ..."]]
    header = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration",
              "Type", "Action Units", "Notes"]
    _workbook(root / "SAMM_LongVideos_V3_Release.xlsx", {"FACS_Movement_Only": [
        *title, header,
        [6, "006_1_1", 1, 8, 29, 50, 43, "Macro", "R12", ""],
        [7, "007_3_1", 3, 15, -1, 29, 15, "Micro - 1/2", "4", ""],
    ]})
    return root


class _FakeFaces(FaceTracker):
    """A face in every frame whose first landmark's x is the frame's grey level."""

    def _detect(self, image, timestamp_ms):
        m = np.zeros((478, 3), np.float32)
        m[:, 0] = np.linspace(1, 40, 478)
        m[:, 1] = np.linspace(1, 30, 478)
        m[0, 0] = float(image[0, 0, 0])
        return [m]


def _fake_extract(src, face_model=None, progress=False):
    return extract_landmarks(src, tracker=_FakeFaces())


# -- pieces --------------------------------------------------------------------------------


def test_xlsx_reader_gets_values_gaps_and_sheets(tmp_path):
    p = _workbook(tmp_path / "b.xlsx", {
        "first": [["a", 1, 2.5, None, True], [], ["x"]],
        "naming rule2": [["0101", "disgust1"]],
    })
    wb = openpyxl.load_workbook(p)
    wb["first"]["H4"] = "far"
    wb.save(p)
    book = read_xlsx(p)
    assert list(book) == ["first", "naming rule2"]
    assert book["first"][0] == ["a", 1, 2.5, None, True]
    assert book["first"][1] == [] and book["first"][2] == ["x"]
    assert book["first"][3] == [None] * 7 + ["far"]
    assert book["naming rule2"] == [["0101", "disgust1"]]
    assert column_index("A") == 0 and column_index("Z") == 25 and column_index("AB") == 27


def test_xlsx_reader_rejects_other_files(tmp_path):
    bad = tmp_path / "labels.xlsx"
    bad.write_text("subject,video\n")
    with pytest.raises(InputError, match="not an .xlsx"):
        read_xlsx(bad)
    with pytest.raises(InputError, match="not found"):
        read_xlsx(tmp_path / "missing.xlsx")


def test_image_folder_order_and_step(tmp_path):
    for i in (1, 2, 10, 9, 100):
        _write_image(tmp_path / "v" / f"img{i}.jpg", i)
    (tmp_path / "v" / "notes.txt").write_text("x")
    files = list_images(tmp_path / "v")
    assert [f.name for f in files] == ["img1.jpg", "img2.jpg", "img9.jpg", "img10.jpg",
                                       "img100.jpg"]
    assert [frame_number(f) for f in files] == [1, 2, 9, 10, 100]
    src = ImageSequenceSource(files, fps=200.0, step=2)
    frames = list(src)
    assert src.fps == 100.0 and src.size == (48, 32) and len(frames) == 3
    assert [f.pts_s for f in frames] == [0.0, 0.01, 0.02]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 9, 100]  # RGB of the kept files
    with pytest.raises(InputError, match="no images"):
        list_images(tmp_path / "v" / "..")  # a folder with only folders and no images


def test_unreadable_image_becomes_an_invalid_frame(tmp_path):
    for i in (1, 2, 3):
        _write_image(tmp_path / f"f{i}.png", 50)
    (tmp_path / "f2.png").write_bytes(b"not a png")
    src = ImageSequenceSource(list_images(tmp_path), fps=30.0)
    series = extract_landmarks(src, tracker=_NoFaceOnBlack())
    assert series.valid.tolist() == [True, False, True] and src.unreadable == 1


class _NoFaceOnBlack(_FakeFaces):
    def _detect(self, image, timestamp_ms):
        return [] if image.max() == 0 else super()._detect(image, timestamp_ms)


def test_step_for_rates():
    assert step_for(30.0, 30.0) == 1
    assert step_for(200.0, 30.0) == 7
    assert step_for(200.0, 25.0) == 8
    with pytest.raises(InputError):
        step_for(200.0, 0.0)


def test_map_labels_numbers_step_and_missing_fields():
    job = VideoJob("006", "006_1", [Path(f"{i}.jpg") for i in range(100)],
                   list(range(1, 101)), 200.0, 7, [
                       Label(8, 29, 50, "macro"),  # positions 7, 28, 49 -> 1, 4, 7
                       Label(15, -1, 29, "micro"),  # apex missing -> middle (22 -> pos 21 -> 3)
                       Label(60, 64, -1, "micro"),  # offset missing -> mirrored (68)
                       Label(500, 505, 510, "micro"),  # outside the video: dropped
                   ])
    anns, warns = map_labels(job, n_out=15)
    got = [(a.onset, a.apex, a.offset, a.kind) for a in anns]
    assert got == [(1, 4, 7, "macro"), (2, 3, 4, "micro"), (8, 9, 10, "micro")]
    assert any("no offset" in w for w in warns) and any("outside" in w for w in warns)


# -- CAS(ME)^2 -------------------------------------------------------------------------------


def test_casme2_jobs_read_the_release(tmp_path):
    jobs, warns = casme2_jobs(_casme2_release(tmp_path))
    by = {j.video: j for j in jobs}
    assert sorted(by) == ["s15_0101", "s15_0508", "s16_0401"]
    assert by["s15_0508"].labels == []  # unlabelled videos are kept
    assert by["s15_0101"].subject == "s15" and by["s15_0101"].step == 1
    assert [(lab.onset, lab.apex, lab.offset, lab.kind) for lab in by["s15_0101"].labels] == [
        (3, 8, 20, "macro"), (25, 0, 31, "micro")]
    assert by["s15_0101"].numbers[:3] == [1, 2, 3]
    assert warns == []


def test_casme2_convert_end_to_end_with_a_fake_tracker(tmp_path):
    root = _casme2_release(tmp_path / "casme2")
    jobs, notes = casme2_jobs(root)
    out = tmp_path / "ds"
    report = convert_videos(jobs, out, dataset="casme2", source_root=root,
                            extract=_fake_extract, progress=False, notes=notes)
    assert sorted(report.converted) == ["s15_0101", "s15_0508", "s16_0401"]
    ds = load_dataset(out)
    rows = [(a.video, a.onset, a.apex, a.offset, a.kind) for a in ds.annotations]
    # 1-based img numbers -> 0-based frames; apex 0 -> middle; offset 0 -> apex mirrored
    assert rows == [("s15_0101", 2, 7, 19, "macro"), ("s15_0101", 24, 27, 30, "micro"),
                    ("s16_0401", 4, 11, 18, "macro")]
    assert ds.subjects == ["s15", "s16"]
    lm = ds.landmarks("s15_0101")
    assert lm.frames == 40 and lm.valid.all() and lm.fps == 30.0
    # frame k of the file is image img{k+1}: the fake tracker reads the grey level back
    assert [round(float(x)) for x in lm.landmarks[[0, 9, 39], 0, 0]] == [1, 10, 40]
    meta = json.loads((out / "convert.json").read_text())
    assert meta["dataset"] == "casme2" and meta["annotations"] == 3
    assert any("outside" in w for w in meta["warnings"])  # the label at frames 900-910


def test_convert_resumes_and_keeps_what_was_done(tmp_path):
    root = _casme2_release(tmp_path / "casme2", n_frames=32)
    jobs, _ = casme2_jobs(root)
    out = tmp_path / "ds"
    calls = []

    def failing_second(src, face_model=None, progress=False):
        calls.append(src.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return _fake_extract(src)

    with pytest.raises(KeyboardInterrupt):
        convert_videos(jobs, out, dataset="casme2", source_root=root, extract=failing_second,
                       progress=False)
    # what was finished is a valid dataset already
    assert [p.name for p in (out / "landmarks").glob("*.npz")] == ["s15_0101.npz"]
    assert len(load_dataset(out).annotations) == 2
    report = convert_videos(jobs, out, dataset="casme2", source_root=root,
                            extract=_fake_extract, progress=False)
    assert report.skipped == ["s15_0101"] and len(report.converted) == 2
    assert len(load_dataset(out).annotations) == 3


def test_casme2_bad_releases_say_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="not found"):
        casme2_jobs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="label workbook"):
        casme2_jobs(tmp_path / "empty")
    root = _casme2_release(tmp_path / "r", n_frames=2)
    with pytest.raises(InputError, match="frame folder"):
        casme2_jobs(root, frames="cropped")
    wrong = _workbook(tmp_path / "wrong.xlsx", {"s": [["Subject", "Filename"], [1, 2]]})
    with pytest.raises(InputError, match="no labels matched"):
        casme2_jobs(root, labels=wrong)


# -- SAMM-LV ---------------------------------------------------------------------------------


def test_samm_lv_convert_downsamples_frames_and_labels(tmp_path):
    root = _samm_release(tmp_path / "samm")
    jobs, notes = samm_lv_jobs(root)
    assert [j.video for j in jobs] == ["006_1", "007_3"] and jobs[0].step == 7
    out = tmp_path / "ds"
    convert_videos(jobs, out, dataset="samm-lv", source_root=root, extract=_fake_extract,
                   progress=False, notes=notes)
    ds = load_dataset(out)
    lm = ds.landmarks("006_1")
    assert lm.frames == 10 and lm.fps == pytest.approx(200 / 7)
    # kept files are numbers 1, 8, 15, ...: the grey level tells which image each frame is
    assert [round(float(x)) for x in lm.landmarks[:3, 0, 0]] == [1, 8, 15]
    rows = [(a.subject, a.video, a.onset, a.apex, a.offset, a.kind) for a in ds.annotations]
    assert rows == [("006", "006_1", 1, 4, 7, "macro"), ("007", "007_3", 2, 3, 4, "micro")]


def test_pfes_convert_cli_dry_run_and_errors(tmp_path, capsys):
    root = _samm_release(tmp_path / "samm", n_frames=14)
    assert pfes_main(["convert", "samm-lv", str(root), "--out", str(tmp_path / "o"),
                      "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 videos of 2 subjects, 2 labels (1 macro, 1 micro)" in out
    assert "28.57 fps" in out and not (tmp_path / "o").exists()
    assert pfes_main(["convert", "samm-lv", str(tmp_path / "none"), "--out",
                      str(tmp_path / "o")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert pfes_main(["convert", "samm-lv", str(root), "--out", str(tmp_path / "o"),
                      "--fps-out", "0"]) == 2


# -- real pixels -----------------------------------------------------------------------------


@pytest.mark.mediapipe
@pytest.mark.slow
def test_casme2_convert_with_mediapipe_on_warped_photos(tmp_path):
    pytest.importorskip("mediapipe")
    pytest.importorskip("skimage")
    from training.warpclip import ClipSpec, WarpEvent, render_frames

    spec = ClipSpec(24, size=(320, 240), events=(WarpEvent("smile", 4, 10, 16),))
    vdir = tmp_path / "r" / "rawpic" / "s15" / "15_0502funnyerrors"
    vdir.mkdir(parents=True)
    for i, f in enumerate(render_frames(spec), start=1):
        assert cv2.imwrite(str(vdir / f"img{i:03d}.jpg"), f[:, :, ::-1])
    _workbook(tmp_path / "r" / "CAS(ME)^2code_final(Updated).xlsx", {
        "CASFEcode_final": [[1, "happy1_1", 5, 11, 17, "12", "positive", "macro-expression",
                             "happy"]],
        "naming rule1": [[15, "s15", 1]],
        "naming rule2": [["0502", "happy1"]],
    })
    out = tmp_path / "ds"
    assert pfes_main(["convert", "casme2", str(tmp_path / "r"), "--out", str(out),
                      "--quiet"]) == 0
    ds = load_dataset(out)
    a = ds.annotations[0]
    assert (a.video, a.onset, a.apex, a.offset, a.kind) == ("s15_0502", 4, 10, 16, "macro")
    lm = ds.landmarks("s15_0502")
    assert lm.frames == 24 and lm.valid.all() and lm.image_size == (320, 240)
    # the smile widens the mouth: lip corners (61, 291) further apart at the apex
    width = np.linalg.norm(lm.landmarks[:, 61, :2] - lm.landmarks[:, 291, :2], axis=-1)
    assert width[10] > width[0] * 1.03
    with open(out / "annotations.csv", newline="") as f:
        assert next(csv.reader(f)) == ["subject", "video", "onset", "apex", "offset", "type"]


def test_convert_with_worker_processes_matches_one_process(tmp_path):
    root = _casme2_release(tmp_path / "casme2", n_frames=32)
    jobs, _ = casme2_jobs(root)
    one, two = tmp_path / "one", tmp_path / "two"
    convert_videos(jobs, one, dataset="casme2", source_root=root, extract=_fake_extract,
                   progress=False)
    report = convert_videos(jobs, two, dataset="casme2", source_root=root,
                            extract=_fake_extract, progress=False, workers=2)
    assert sorted(report.converted) == sorted(j.video for j in jobs)
    assert (one / "annotations.csv").read_text() == (two / "annotations.csv").read_text()
    for j in jobs:
        a, b = load_dataset(one).landmarks(j.video), load_dataset(two).landmarks(j.video)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
    with pytest.raises(InputError, match="workers"):
        convert_videos(jobs, two, dataset="casme2", source_root=root, workers=0)


def test_samm_lv_bad_releases_say_what_is_wrong(tmp_path):
    root = _samm_release(tmp_path / "samm", n_frames=3)
    with pytest.raises(InputError, match="frame folder"):
        samm_lv_jobs(root, frames="frames")
    wrong = _workbook(tmp_path / "w.xlsx", {"s": [["Subject", "Onset"], [6, 3]]})
    with pytest.raises(InputError, match="header row"):
        samm_lv_jobs(root, labels=wrong)
