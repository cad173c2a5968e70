"""``pfes convert casme3``: a look-alike CAS(ME)^3 Part A release (frames named by jpg number,
starting late and with a gap; a legacy .xls label workbook with text cells) -> a dataset dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pfes.cli import main as pfes_main
from pfes.errors import InputError
from stream.extract import extract_landmarks
from stream.tracker import FaceTracker
from training.convert import convert_videos
from training.dataset import load_dataset
from training.real_datasets import casme3_jobs

cv2 = pytest.importorskip("cv2")
xlwt = pytest.importorskip("xlwt")

HEADER = [
    "Subject",
    "Filename",
    "Onset",
    "Apex",
    "Offset",
    "AU",
    "Expression type",
    "Objective class",
]
ROWS = [
    # numbers stored as text, as in the release; one numeric cell
    ["spNO.1", "a", "10", "15", "20", "4+15+R10", "Macro-expression", "VII"],
    ["spNO.1", "a", "30", "33", 44.0, "5", "Micro-expression", "II"],  # a 15-frame micro
    ["spNO.14", "J", "5", "8", "12", "14", "Micro-expression", "VII"],  # upper-case video
    ["spNO.1", "b", "0", "0", "25", "14", "Micro-expression", "VII"],  # onset and apex 0
    ["spNO.99", "a", "5", "6", "7", "4", "Macro-expression", "I"],  # no frames: skipped
]


def _write_image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((32, 48, 3), value % 256, np.uint8))


def _xls(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = xlwt.Workbook()
    for name, rows in sheets.items():
        ws = wb.add_sheet(name)
        for i, r in enumerate(rows):
            for j, v in enumerate(r):
                ws.write(i, j, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(str(path))
    return path


def _release(root: Path) -> Path:
    """spNO.1/a: jpgs 7..46 without 20 and 21; spNO.1/b: 1..30; spNO.14/j: 3..22; depth unused."""
    data = root / "data" / "part_A"
    for n in [*range(7, 20), *range(22, 47)]:
        _write_image(data / "spNO.1" / "a" / "color" / f"{n}.jpg", n)
    for n in range(1, 31):
        _write_image(data / "spNO.1" / "b" / "color" / f"{n}.jpg", n)
    for n in range(3, 23):
        _write_image(data / "spNO.14" / "j" / "color" / f"{n}.jpg", n)
    (data / "spNO.14" / "j" / "depth").mkdir()
    _xls(
        root / "annotation" / "CAS(ME)3_part_A_v2.xls",
        {
            "AU+Emotion": [HEADER, *ROWS],
            "eye blink": [["Subject", "Filename", "Onset", "Offset"], ["spNO.1", "a", "12", "14"]],
        },
    )
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


def test_casme3_jobs_read_the_release(tmp_path):
    jobs, warns = casme3_jobs(_release(tmp_path))
    by = {j.video: j for j in jobs}
    assert sorted(by) == ["sp14_j", "sp1_a", "sp1_b"]
    assert by["sp1_a"].subject == "sp1" and by["sp1_a"].step == 1 and by["sp1_a"].fps == 30.0
    assert by["sp1_a"].numbers[:3] == [7, 8, 9] and 20 not in by["sp1_a"].numbers
    assert [(lab.onset, lab.apex, lab.offset, lab.kind) for lab in by["sp1_a"].labels] == [
        (10, 15, 20, "macro"),
        (30, 33, 44, "micro"),
    ]
    assert [lab.kind for lab in by["sp14_j"].labels] == ["micro"]
    assert any("spNO.99" not in w and "sp99_a" in w for w in warns), warns


def test_casme3_convert_maps_jpg_numbers_to_positions(tmp_path):
    root = _release(tmp_path / "cas3")
    jobs, notes = casme3_jobs(root)
    out = tmp_path / "ds"
    convert_videos(
        jobs,
        out,
        dataset="casme3",
        source_root=root,
        extract=_fake_extract,
        progress=False,
        notes=notes,
    )
    ds = load_dataset(out)
    rows = [(a.video, a.onset, a.apex, a.offset, a.kind) for a in ds.annotations]
    # sp1_a: jpg 7 is frame 0, 20 and 21 are missing: 10 -> 3, 15 -> 8, 20 -> nearest (19) -> 12,
    # 30 -> 21, 33 -> 24, 44 -> 35; sp1_b: onset 0 -> nearest (jpg 1) -> 0, apex 0 -> middle
    # (12 -> 11), 25 -> 24; sp14_j: jpg 3 is frame 0
    assert sorted(rows) == [
        ("sp14_j", 2, 5, 9, "micro"),
        ("sp1_a", 3, 8, 12, "macro"),
        ("sp1_a", 21, 24, 35, "micro"),
        ("sp1_b", 0, 11, 24, "micro"),
    ]
    assert ds.subjects == ["sp1", "sp14"]
    lm = ds.landmarks("sp1_a")
    assert lm.frames == 38 and lm.valid.all()
    assert [round(float(x)) for x in lm.landmarks[[0, 12, 13], 0, 0]] == [7, 19, 22]
    assert json.loads((out / "convert.json").read_text())["dataset"] == "casme3"


def test_casme3_reads_an_xlsx_copy_of_the_workbook(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    root = _release(tmp_path / "cas3")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "AU+Emotion"
    for r in [HEADER, *ROWS]:
        ws.append(r)
    copy = tmp_path / "labels.xlsx"
    wb.save(copy)
    jobs, _ = casme3_jobs(root, labels=copy)
    assert sum(len(j.labels) for j in jobs) == 4


def test_casme3_bad_releases_say_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="not found"):
        casme3_jobs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="CAS\\(ME\\)\\^3 label workbook"):
        casme3_jobs(tmp_path / "empty")
    root = _release(tmp_path / "r")
    with pytest.raises(InputError, match="no subject folders"):
        casme3_jobs(root, frames="data/elsewhere")
    bad = tmp_path / "bad.xls"
    bad.write_bytes(b"not a workbook at all")
    with pytest.raises(InputError, match="not a readable .xls"):
        casme3_jobs(root, labels=bad)
    wrong = _xls(tmp_path / "wrong.xls", {"s": [["Subject", "Filename"], ["spNO.1", "a"]]})
    with pytest.raises(InputError, match="no sheet has a header row"):
        casme3_jobs(root, labels=wrong)


def test_pfes_convert_casme3_cli(tmp_path, capsys):
    root = _release(tmp_path / "cas3")
    assert (
        pfes_main(["convert", "casme3", str(root), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    )
    out = capsys.readouterr().out
    assert "3 videos of 2 subjects, 4 labels (1 macro, 3 micro)" in out
    assert not (tmp_path / "o").exists()
    (tmp_path / "empty").mkdir()
    assert (
        pfes_main(["convert", "casme3", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "label workbook" in err
