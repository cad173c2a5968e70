"""Recipes: the shipped files, flags over them, bad files, and `--recipe paper` end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from engine.checkpoint import load_checkpoint
from pfes.cli import main
from pfes.errors import InputError
from training.recipe import load_recipe, recipe_config
from training.synth import generate_dataset
from training.synth_config import SynthConfig
from training.trainer import SUPERVISIONS, TrainConfig


@pytest.mark.parametrize("supervision", SUPERVISIONS)
def test_pfes_recipe_is_the_trainers_defaults_exactly(supervision):
    assert recipe_config("pfes", {"supervision": supervision}) == TrainConfig(
        supervision=supervision
    )


def test_paper_recipe_is_the_references_losses_gim_and_proposals():
    cfg = recipe_config("paper")
    w = cfg.weights
    assert (w.iac_form, w.apex_form, w.sparsity_form, w.smoothness_form) == ("reference",) * 4
    assert (w.iac, w.sparsity, w.smoothness) == (1.4e-5, 2.5, 0.1)
    assert cfg.gim_micro == "gim" and cfg.gim_config().hard_classes == ()
    assert cfg.gim_variant == "paper" and cfg.hard_negative_fraction == 0.0
    assert (cfg.epochs, cfg.lr_step_epochs, cfg.lr_gamma) == (100, 30, 0.5)
    assert cfg.proposal_preset == "casme2" and cfg.recipe == "paper"
    assert cfg.lookahead_frames == 0 and cfg.iac_max_frames == 4096


def test_flags_override_the_recipe():
    cfg = recipe_config(
        "paper",
        {"gim_micro": "hard", "use_iac": False, "lookahead_frames": 8},
        {"iac": 2e-6, "sparsity": 0.3},
    )
    assert (cfg.gim_micro, cfg.use_iac, cfg.lookahead_frames) == ("hard", False, 8)
    assert (cfg.weights.iac, cfg.weights.sparsity, cfg.weights.iac_form) == (2e-6, 0.3, "reference")


def test_recipe_files_toml_and_json(tmp_path):
    t = tmp_path / "r.toml"
    t.write_text(
        'gim_variant = "released"\ndilations = [1, 2]\n[weights]\napex_form = "reference"\n'
    )
    cfg = recipe_config(str(t))
    assert cfg.gim_variant == "released" and cfg.dilations == (1, 2)
    assert cfg.weights.apex_form == "reference" and cfg.weights.iac_form == "pfes"
    j = tmp_path / "r.json"
    j.write_text('{"supervision": "hard", "gim": {"k_frames": [40, 16]}}')
    cfg = recipe_config(str(j))
    assert cfg.supervision == "hard" and cfg.gim.k_frames == (40, 16)
    assert load_recipe("paper")[0] == "paper"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("gim_micros = 'gim'\n", "unknown key 'gim_micros'"),
        ("recipe = 'other'\n", "unknown key 'recipe'"),
        ("[weights]\niac_fom = 'reference'\n", r"\[weights\]: unknown key 'iac_fom'"),
        ("[gim]\nk = 1\n", r"\[gim\]: unknown key 'k'"),
        ("epochs = 'ten'\n", "epochs must be like"),
        ("[weights]\niac_form = 'normalised'\n", "iac_form must be one of"),
        ("gim_micro = 'both'\n", "gim_micro must be"),
        ("epochs = [\n", "not valid TOML"),
    ],
)
def test_bad_recipe_is_a_one_line_error(tmp_path, capsys, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        recipe_config(str(p))
    assert (
        main(
            ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--recipe", str(p)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pfes train: error: recipe"), err


def test_unknown_recipe_name_and_removed_flags(tmp_path, capsys):
    with pytest.raises(InputError, match="recipe must be one of pfes, paper"):
        recipe_config("papr")
    for flag in (["--final-fit", "best"], ["--input-whitening"]):
        with pytest.raises(SystemExit) as e:
            main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt"), *flag])
        assert e.value.code == 2
    capsys.readouterr()


def test_recipe_paper_trains_end_to_end_on_a_tiny_synthetic_set(tmp_path, capsys):
    data = tmp_path / "data"
    generate_dataset(
        data,
        subjects=3,
        videos_per_subject=1,
        seed=2,
        config=SynthConfig(
            video_length_s=(10.0, 10.0),
            frame_sizes_px=((640, 360),),
            macro_per_min=(8.0, 8.0),
            micro_per_min=(6.0, 6.0),
        ),
    )
    model = tmp_path / "m.pt"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert (
            main(
                [
                    "train",
                    "--recipe",
                    "paper",
                    "--data",
                    str(data),
                    "--out",
                    str(model),
                    "--epochs",
                    "6",
                    "--channels",
                    "8",
                    "--selection",
                    "grid",
                    "--no-instance-classifier",
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(before)
    assert "epoch 6/6" in capsys.readouterr().err
    meta = load_checkpoint(model).meta["training"]
    cfg = meta["config"]
    assert cfg["recipe"] == "paper" and cfg["gim_micro"] == "gim" and cfg["epochs"] == 6
    assert cfg["weights"]["iac_form"] == "reference" and cfg["selection"] == "grid"
    last = meta["history"][-1]
    assert last["grad_total"] > 0 and "grad_apex" in last and "iac" in last
    js = tmp_path / "r.json"
    assert main(["eval", "--data", str(data), "--model", str(model), "--proposals", "offline",
                 "--json", str(js)]) == 0
    assert "offline proposals" in capsys.readouterr().out
    assert json.loads(js.read_text())["protocol"]["proposal_preset"] == "casme2"  # the recipe's
    assert dataclasses.asdict(recipe_config("paper"))["proposal_preset"] == "casme2"
