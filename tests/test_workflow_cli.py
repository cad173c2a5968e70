"""End to end through the CLI: synth dataset -> pfes train -> pfes eval --json -> pfes calibrate.

Tiny on purpose (4 subjects, one 12-15 s video each, 3 epochs, 16 channels): this checks the
plumbing and the file contracts (checkpoint metadata, eval JSON), not accuracy.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.detector import DetectorConfig
from pfes.cli import main
from training.synth import generate_dataset
from training.synth_config import SynthConfig

KINDS = ("macro", "micro")


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("wf") / "data"
    cfg = SynthConfig(video_length_s=(12.0, 15.0), frame_sizes_px=((640, 360),),
                      macro_per_min=(8.0, 10.0), micro_per_min=(4.0, 6.0))
    generate_dataset(root, subjects=4, videos_per_subject=1, seed=3, config=cfg)
    return root


def _counts(root) -> dict[str, int]:
    with open(root / "annotations.csv", newline="") as f:
        kinds = [r["type"] for r in csv.DictReader(f)]
    return {k: kinds.count(k) for k in KINDS}


def _check_table(res: dict, counts: dict[str, int]) -> None:
    for k in (*KINDS, "overall"):
        row = res[k]
        assert set(row) >= {"tp", "fp", "n", "precision", "recall", "f1"}, row
        assert all(isinstance(row[c], int) and row[c] >= 0 for c in ("tp", "fp", "n"))
        assert all(0.0 <= row[c] <= 1.0 for c in ("precision", "recall", "f1"))
        assert row["tp"] <= row["n"]
        if row["tp"] + row["fp"]:
            assert math.isclose(row["precision"], row["tp"] / (row["tp"] + row["fp"]))
        if row["n"]:
            assert math.isclose(row["recall"], row["tp"] / row["n"])
    for c in ("tp", "fp", "n"):
        assert res["overall"][c] == res["macro"][c] + res["micro"][c]
    assert {k: res[k]["n"] for k in KINDS} == counts


def test_train_eval_calibrate(tmp_path, data, one_thread, capsys):
    counts = _counts(data)
    assert counts["macro"] > 0 and counts["micro"] > 0
    model, model2, js = tmp_path / "m.pt", tmp_path / "cal" / "m2.pt", tmp_path / "r.json"

    assert main(["train", "--data", str(data), "--out", str(model), "--epochs", "3",
                 "--channels", "16"]) == 0
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and f"saved {model}" in err and "instance classifier" in err

    assert main(["eval", "--data", str(data), "--model", str(model), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "overall" in out and "F1" in out
    res = json.loads(js.read_text())
    _check_table(res, counts)
    assert res["protocol"]["videos"] == 4 and res["protocol"]["subjects"] == 4
    assert res["protocol"]["proposals"] == "online"

    assert main(["calibrate", "--data", str(data), "--model", str(model),
                 "--out", str(model2)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {model2}" in out and "detector:" in out and "instance classifier" in out
    assert "verifier" in out

    first = load_checkpoint(model)
    cal = load_checkpoint(model2)
    for meta in (first.meta, cal.meta):
        assert {"detector", "feature_spec", "training", "provenance"} <= set(meta)
        prov = meta["provenance"]
        assert isinstance(prov["git"], str) and prov["git"]
        assert dt.datetime.fromisoformat(prov["date"]).tzinfo is not None
        assert prov["data"]["path"] == str(data) and prov["data"]["videos"] == 4
        assert prov["data"]["instances"] == sum(counts.values())
        assert prov["data"]["synth"]["seed"] == 3  # the generator's settings travel along
    assert cal.meta["training"] == first.meta["training"]  # calibration keeps the history
    assert cal.meta["feature_spec"] == first.meta["feature_spec"]
    tr = first.meta["training"]
    assert tr["config"]["epochs"] == 3 and tr["config"]["channels"] == 16
    assert not set(tr["inner_train_subjects"]) & set(tr["inner_val_subjects"])
    assert tr["config"]["instance_classifier"] is True
    for ic in (tr["instance_classifier"], cal.meta["calibration"]["instance_classifier"]):
        # fitted (or refused, with the reason) on the selection subjects; the stored operating
        # point carries it exactly when it was kept
        assert isinstance(ic["used"], bool) and ic["reason"]
        assert set(ic["runs"]) == {"micro", "macro", "unmatched"}
        assert ic["f1_with"]["overall"] >= ic["f1_without"]["overall"]
        assert isinstance(ic["verifier"]["used"], bool) and ic["verifier"]["reason"]
    first_det = DetectorConfig.from_dict(first.meta["detector"])
    assert bool(first_det.instance_classifier) == tr["instance_classifier"]["used"]
    assert bool(first_det.instance_verifier) == tr["instance_classifier"]["verifier"]["used"]
    assert cal.meta["calibration"]["data"] == str(data)
    det = DetectorConfig.from_dict(cal.meta["detector"])  # a valid operating point
    assert len(det.apex_temperature) == 2 and min(det.apex_temperature) > 0
    for a, b in zip(first.net.state_dict().values(), cal.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # calibration changes the detector, never the weights

    # the calibrated model is usable by eval, with the offline proposals too
    js2 = tmp_path / "r2.json"
    assert main(["eval", "--data", str(data), "--model", str(model2), "--json", str(js2),
                 "--proposals", "offline"]) == 0
    capsys.readouterr()
    res2 = json.loads(js2.read_text())
    _check_table(res2, counts)
    assert res2["protocol"]["proposals"] == "offline"


def test_feature_options_travel_with_the_model(tmp_path, data, one_thread, capsys):
    """--despike and --stable-set are recorded in the checkpoint and used by eval; so are the
    --loss-weights preset's values."""
    from stream.features import FeatureConfig, extract_features
    from training.dataset import load_dataset
    from training.infer import video_features

    model = tmp_path / "f.pt"
    assert main(["train", "--data", str(data), "--out", str(model), "--epochs", "1",
                 "--channels", "8", "--despike", "0.08", "--stable-set", "core",
                 "--loss-weights", "samm-lv"]) == 0
    weights = load_checkpoint(model).meta["training"]["config"]["weights"]
    assert weights["iac"] == 2e-6 and weights["sparsity"] == 0.3  # the reference's SAMM-LV values
    spec = load_checkpoint(model).meta["feature_spec"]
    assert spec["despike"]["iod"] == 0.08 and spec["stable_set"]["name"] == "core"
    ds = load_dataset(data)
    lm = ds.landmarks(ds.videos[0])
    used, _ = video_features(lm.landmarks, lm.valid, lm.fps, spec)
    want, _ = extract_features(lm.landmarks, lm.valid, lm.fps,
                               FeatureConfig(despike_iod=0.08, stable_set="core"))
    plain, _ = extract_features(lm.landmarks, lm.valid, lm.fps)
    assert np.array_equal(used, want) and not np.array_equal(used, plain)
    capsys.readouterr()
    assert main(["eval", "--data", str(data), "--model", str(model)]) == 0
    assert main(["train", "--data", str(data), "--out", str(model), "--despike", "2"]) == 2


def test_eval_no_verifier_scores_without_the_verifier(tmp_path, data, one_thread, capsys):
    # the bundled model, made to treat every run as brief and given a verifier that rejects
    # every brief run: with it nothing is spotted, with --no-verifier the model's usual events
    from engine.checkpoint import save_checkpoint
    from engine.detector import INSTANCE_FEATURES

    ck = load_checkpoint(None)
    det = DetectorConfig.from_dict(ck.meta["detector"])
    det = DetectorConfig.from_dict({**det.to_dict(), "micro_max_duration_s": det.macro_max_duration_s,
                                    "instance_verifier": [0.0] * len(INSTANCE_FEATURES) + [-60.0]})
    model = tmp_path / "rejects_all.pt"
    save_checkpoint(model, ck.net, {**ck.meta, "detector": det.to_dict()})
    js, js_off = tmp_path / "with.json", tmp_path / "without.json"
    assert main(["eval", "--data", str(data), "--model", str(model), "--json", str(js)]) == 0
    assert main(["eval", "--data", str(data), "--model", str(model), "--json", str(js_off),
                 "--no-verifier"]) == 0
    capsys.readouterr()
    on, off = json.loads(js.read_text()), json.loads(js_off.read_text())
    assert on["protocol"]["verifier"] is True and off["protocol"]["verifier"] is False
    assert on["overall"]["tp"] + on["overall"]["fp"] == 0
    assert off["overall"]["tp"] > 0
