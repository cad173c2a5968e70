"""LOSO cross-validation: every subject held out once, predictions pooled, nested selection."""

from __future__ import annotations

import json

import pytest
import torch

import training.crossval as cv
from pfes.cli import main
from training.synth import generate_dataset
from training.synth_config import SynthConfig


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv") / "data"
    cfg = SynthConfig(video_length_s=(12.0, 14.0), frame_sizes_px=((640, 360),),
                      macro_per_min=(8.0, 10.0), micro_per_min=(4.0, 6.0))
    generate_dataset(root, subjects=4, videos_per_subject=1, seed=5, config=cfg)
    return root


def test_loso_holds_out_each_subject_once_and_pools(data, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    seen = []
    real_train = cv.train

    def spy(videos, split, cfg, fps, progress=None):
        assert not set(split.test) & (set(split.inner_train) | set(split.inner_val))
        seen.append(split.test)
        return real_train(videos, split, cfg, fps, progress)

    monkeypatch.setattr(cv, "train", spy)
    out = tmp_path / "cv.json"
    rc = main(["crossval", "--data", str(data), "--folds", "loso", "--epochs", "2",
               "--channels", "8", "--json", str(out)])
    assert rc == 0
    assert sorted(s for t in seen for s in t) == ["s01", "s02", "s03", "s04"]
    res = json.loads(out.read_text())
    assert len(res["folds"]) == 4
    pooled = res["pooled"]
    for k in ("macro", "micro", "overall"):
        assert pooled[k]["n"] == sum(f["result"][k]["n"] for f in res["folds"])
        assert pooled[k]["tp"] == sum(f["result"][k]["tp"] for f in res["folds"])


def test_bad_folds_is_a_one_line_error(data, capsys):
    assert main(["crossval", "--data", str(data), "--folds", "many"]) == 2
    assert "loso" in capsys.readouterr().err
