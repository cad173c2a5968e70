"""Offline plots: ``pfes plot`` on a landmark file with ground truth, ``pfes eval --plots``,
and the drawing itself (an event's shading shows up where the event is)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from matplotlib.image import imread
from pipeline_fakes import save_small_model

from engine.detector import DetectorConfig
from pfes.cli import main
from training.evaluate import Interval
from training.plots import VideoCurves, plot_video
from training.synth import generate_dataset
from training.synth_config import SynthConfig

MICRO_SHADE = np.array([244, 216, 226]) / 255  # #c2255c at alpha 0.18 on white


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots") / "data"
    cfg = SynthConfig(
        video_length_s=(6.0, 8.0),
        frame_sizes_px=((640, 360),),
        macro_per_min=(8.0, 10.0),
        micro_per_min=(6.0, 8.0),
    )
    generate_dataset(root, subjects=2, videos_per_subject=1, seed=5, config=cfg)
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_small_model(tmp_path_factory.mktemp("m") / "m.pt")


def _shade_columns(png) -> np.ndarray:
    img = imread(str(png))[:, :, :3]
    near = np.all(np.abs(img - MICRO_SHADE) < 0.03, axis=2)
    return np.flatnonzero(near.sum(axis=0) > 20)


def test_a_micro_event_is_shaded_where_it_is(tmp_path):
    t = 300
    inten = np.zeros(t, np.float32)
    inten[150:160] = 0.9
    curves = dict(
        name="v",
        fps=30.0,
        intensity=inten,
        apex=np.full((t, 2), 0.5, np.float32),
        valid=np.ones(t, bool),
        truth=[Interval(150, 159, "micro")],
        detector=DetectorConfig(),
    )
    with_ev = plot_video(
        VideoCurves(predicted=[Interval(150, 159, "micro", 1.0, 155)], **curves), tmp_path / "a.png"
    )
    without = plot_video(VideoCurves(predicted=[], **curves), tmp_path / "b" / "b.png")
    assert imread(str(with_ev)).shape[:2] == (480, 1200)
    cols = _shade_columns(with_ev)
    assert len(_shade_columns(without)) == 0
    # the event lasts 10 of 300 frames: a narrow band about half way along the time axis
    assert 5 <= len(cols) <= 40
    assert 0.4 < cols.mean() / 1200 < 0.6


def test_pfes_plot_landmark_file_with_csv_truth(tmp_path, data, model, capsys):
    with open(data / "annotations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    video = rows[0]["video"]
    n_true = sum(r["video"] == video for r in rows)
    out = tmp_path / "p.png"
    rc = main(
        [
            "plot",
            str(data / "landmarks" / f"{video}.npz"),
            "--model",
            model,
            "--truth",
            str(data / "annotations.csv"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert f", {n_true} true" in capsys.readouterr().out
    assert imread(str(out)).shape[1] == 1200


def test_pfes_plot_bad_input_is_exit_2(tmp_path, data, model, capsys):
    bad = tmp_path / "t.json"
    bad.write_text('{"nothing": 1}')
    lm = str(next((data / "landmarks").glob("*.npz")))
    assert (
        main(["plot", lm, "--model", model, "--truth", str(bad), "--out", str(tmp_path / "x.png")])
        == 2
    )
    assert main(["plot", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "not an annotations.csv" in err and "no such file" in err and "Traceback" not in err


def test_eval_plots_one_png_per_video(tmp_path, data, model, capsys):
    out = tmp_path / "plots"
    rc = main(["eval", "--data", str(data), "--model", model, "--plots", str(out)])
    assert rc == 0
    videos = sorted(p.stem for p in (data / "landmarks").glob("*.npz"))
    assert sorted(p.stem for p in out.glob("*.png")) == videos
    assert f"{len(videos)} plots in" in capsys.readouterr().err
