"""``pfes`` through ``pfes.cli.main``: the command list, and bad input on every command.

Bad input must end with ONE line on stderr (``pfes <command>: error: ...``; argparse errors
add their usage lines first) and the documented exit code: 2 bad usage or input, 3 source
unreachable, 4 model problem. Never a traceback.
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
import torch

from engine.checkpoint import save_checkpoint
from engine.detector import DetectorConfig
from engine.model import ModelConfig, PfesNet
from pfes import cli
from pfes.cli import COMMANDS, main
from stream.features import feature_spec
from training.dataset import N_LANDMARKS, LandmarkVideo, save_landmarks

HEADER = "subject,video,onset,apex,offset,type\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    spec = feature_spec()
    torch.manual_seed(0)
    net = PfesNet(ModelConfig(in_features=spec["n_features"], channels=8, dilations=(1, 2),
                              proj_dim=8))
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, net, {"feature_spec": spec, "detector": DetectorConfig().to_dict()})
    return str(path)


def _dataset(root, rows: str = "s1,s1_v,5,8,12,macro\ns2,s2_v,3,4,6,micro\n"):
    rng = np.random.default_rng(0)
    for video in ("s1_v", "s2_v"):
        lm = rng.normal(300, 40, size=(30, N_LANDMARKS, 3)).astype(np.float32)
        save_landmarks(root / "landmarks" / f"{video}.npz",
                       LandmarkVideo(lm, np.ones(30, bool), 30.0, (640, 480)))
    (root / "annotations.csv").write_text(HEADER + rows)
    return root


@pytest.fixture
def data(tmp_path):
    return str(_dataset(tmp_path / "ds"))


@pytest.fixture
def corrupt_model(tmp_path) -> str:
    p = tmp_path / "bad.pt"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return str(p)


def _fails(capsys, argv: list[str], code: int, match: str = "", progress: bool = False) -> str:
    """Run the CLI; assert exit ``code`` and exactly one stderr line ``pfes CMD: error: ...``.

    ``progress``: the error may follow progress lines (``pfes CMD: ...``) of work already done.
    """
    rc = main(argv)
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert "Traceback" not in cap.err + cap.out, cap.err
    assert rc == code, (rc, cap.err)
    if progress:
        assert all(s.startswith(f"pfes {argv[0]}: ") and "error" not in s for s in lines[:-1])
        lines = lines[-1:]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"pfes {argv[0]}: error: "), lines
    assert match in lines[0], lines
    return lines[0]


def _usage_error(capsys, argv: list[str], match: str) -> str:
    """argparse errors: SystemExit(2), usage lines, then one ``error:`` line."""
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[0].startswith("usage: pfes")
    assert [i for i, s in enumerate(lines) if "error:" in s] == [len(lines) - 1], lines
    assert match in lines[-1], lines
    return lines[-1]


# -- the command list ------------------------------------------------------------------------

def _listed(help_text: str) -> list[str]:
    return re.findall(r"^ {4}([a-z][\w-]*)(?=\s|$)", help_text, flags=re.M)


def test_help_lists_exactly_the_commands_that_exist(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["--help"])
    assert ei.value.code == 0
    exist = [n for n, m in COMMANDS.items() if importlib.util.find_spec(m) is not None]
    assert exist == list(COMMANDS)  # this checkout has every registered module
    assert _listed(capsys.readouterr().out) == exist


def test_help_omits_a_registered_command_without_module(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "ghost", "pfes.commands.no_such_module")
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = _listed(capsys.readouterr().out)
    assert "ghost" not in listed and "train" in listed
    _usage_error(capsys, ["ghost"], "invalid choice")


def test_a_command_whose_package_is_missing_is_one_line_and_exit_1(capsys, monkeypatch, tmp_path):
    # a partial install (e.g. pfes outside its virtual environment, torch absent)
    (tmp_path / "pfes_cmd_needs_missing.py").write_text("import pfes_no_such_package  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "needy", "pfes_cmd_needs_missing")
    assert main(["train", "--help"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pfes_no_such_package" in err and "install.sh" in err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_command(capsys):
    _usage_error(capsys, ["frobnicate"], "invalid choice: 'frobnicate'")


def test_missing_required_option_and_bad_number(capsys, tmp_path):
    _usage_error(capsys, ["train", "--out", str(tmp_path / "m.pt")], "--data")
    _usage_error(capsys, ["train", "--data", "d", "--out", "m.pt", "--epochs", "x"],
                 "invalid int value")


# -- train / eval / calibrate ----------------------------------------------------------------

def test_train_missing_data_dir(capsys, tmp_path):
    _fails(capsys, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m.pt")],
           2, "dataset directory not found")


def test_train_dir_without_annotations(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    _fails(capsys, ["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "m.pt")],
           2, "no annotations.csv")


def test_train_bad_settings_are_usage_errors(capsys, tmp_path, data):
    out = str(tmp_path / "m.pt")
    _fails(capsys, ["train", "--data", data, "--out", out, "--channels", "0"], 2, "--channels")
    _fails(capsys, ["train", "--data", data, "--out", out, "--lookahead", "-1"], 2, "--lookahead")
    _fails(capsys, ["train", "--data", data, "--out", out, "--hard-negatives", "2"], 2,
           "--hard-negatives")
    _fails(capsys, ["train", "--data", data, "--out", out, "--epochs", "0"], 2, "--epochs")
    _fails(capsys, ["train", "--data", data, "--out", out, "--lr", "0"], 2, "--lr")
    _fails(capsys, ["crossval", "--data", data, "--epochs", "-3"], 2, "--epochs")
    _fails(capsys, ["train", "--data", data, "--out", out, "--val-fraction", "1.5"], 2,
           "val_fraction")


def test_train_rate_and_input_scaling_reach_the_config(monkeypatch, tmp_path, data):
    import training.workflow

    seen = []
    monkeypatch.setattr(training.workflow, "train_model", lambda d, o, cfg, **kw: seen.append(cfg))
    out = str(tmp_path / "m.pt")
    assert main(["train", "--data", data, "--out", out]) == 0
    assert main(["train", "--data", data, "--out", out, "--no-input-scaling", "--lr", "3e-3"]) == 0
    assert main(["train", "--data", data, "--out", out, "--supervision", "hard"]) == 0
    assert main(["train", "--data", data, "--out", out, "--supervision", "hard",
                 "--input-scaling"]) == 0
    assert [(c.lr, c.input_scaling) for c in seen] == [(1e-3, True), (3e-3, False), (2e-3, False),
                                                        (2e-3, True)]


def test_train_unwritable_out_fails_before_training(capsys, tmp_path, data):
    (tmp_path / "afile").write_text("x")
    _fails(capsys, ["train", "--data", data, "--out", str(tmp_path / "afile" / "m.pt")], 2,
           "cannot write model")
    _fails(capsys, ["train", "--data", data, "--out", data], 2, "is a directory")


def test_eval_corrupt_model_is_exit_4(capsys, data, corrupt_model):
    _fails(capsys, ["eval", "--data", data, "--model", corrupt_model], 4,
           "not a readable pfes checkpoint")


def test_eval_missing_model_is_exit_4(capsys, tmp_path, data):
    _fails(capsys, ["eval", "--data", data, "--model", str(tmp_path / "none.pt")], 4,
           "model file not found")


def test_eval_bad_type_in_annotations(capsys, tmp_path, model):
    ds = _dataset(tmp_path / "ds", "s1,s1_v,5,8,12,macro\ns2,s2_v,3,4,6,smile\n")
    line = _fails(capsys, ["eval", "--data", str(ds), "--model", model], 2,
                  "type must be macro or micro")
    assert "annotations.csv:3" in line  # names the file and line


def test_eval_binary_annotations(capsys, tmp_path, model):
    ds = _dataset(tmp_path / "ds")
    (ds / "annotations.csv").write_bytes(HEADER.encode() + b"\xff\xfe\x00\x81garbage\n")
    _fails(capsys, ["eval", "--data", str(ds), "--model", model], 2, "not a readable UTF-8 CSV")


def test_eval_annotation_beyond_video(capsys, tmp_path, model):
    ds = _dataset(tmp_path / "ds", "s1,s1_v,5,8,500,macro\n")
    _fails(capsys, ["eval", "--data", str(ds), "--model", model], 2, "beyond 30 frames",
           progress=True)


def test_eval_unwritable_json(capsys, tmp_path, data, model):
    (tmp_path / "afile").write_text("x")
    _fails(capsys, ["eval", "--data", data, "--model", model, "--json",
                    str(tmp_path / "afile" / "r.json")], 2, "cannot write JSON")


def test_calibrate_missing_data(capsys, tmp_path, model):
    _fails(capsys, ["calibrate", "--data", str(tmp_path / "nope"), "--model", model,
                    "--out", str(tmp_path / "m2.pt")], 2, "dataset directory not found")


def test_calibrate_unwritable_out(capsys, tmp_path, data, model):
    (tmp_path / "afile").write_text("x")
    _fails(capsys, ["calibrate", "--data", data, "--model", model,
                    "--out", str(tmp_path / "afile" / "m2.pt")], 2, "cannot write model")


def test_calibrate_corrupt_model(capsys, tmp_path, data, corrupt_model):
    _fails(capsys, ["calibrate", "--data", data, "--model", corrupt_model,
                    "--out", str(tmp_path / "m2.pt")], 4, "not a readable pfes checkpoint")


# -- the other commands ----------------------------------------------------------------------

def test_extract_missing_video(capsys, tmp_path):
    _fails(capsys, ["extract", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "x.npz")], 2,
           "not found")


def test_synth_zero_subjects(capsys, tmp_path):
    _fails(capsys, ["synth", "--out", str(tmp_path / "s"), "--subjects", "0"], 2, "subjects")


def test_abbreviated_options_are_refused(capsys, tmp_path):
    """``--quiet`` must not silently become ``pfes synth --quiet-distractors``."""
    _usage_error(capsys, ["synth", "--out", str(tmp_path / "s"), "--quiet"],
                 "unrecognized arguments: --quiet")
    assert not (tmp_path / "s").exists()


def test_export_corrupt_model(capsys, tmp_path, corrupt_model):
    _fails(capsys, ["export", "--format", "onnx", "--model", corrupt_model,
                    "--out", str(tmp_path / "m.onnx")], 4, "not a readable pfes checkpoint")


def test_bench_unknown_backend(capsys):
    _fails(capsys, ["bench", "--backends", "warpdrive"], 2, "unknown backend")


def test_run_missing_file(capsys, tmp_path, model):
    _fails(capsys, ["run", str(tmp_path / "none.mp4"), "--model", model, "--publish", "off"], 2,
           "not found")


def test_run_unsupported_scheme(capsys, model):
    _fails(capsys, ["run", "foo://bar", "--model", model, "--publish", "off"], 2,
           "unsupported source")


@pytest.mark.parametrize("endpoint", ["garbage", "tcp://", "tcp://127.0.0.1:notaport"])
def test_listen_malformed_endpoint(capsys, endpoint):
    _fails(capsys, ["listen", "--connect", endpoint, "--timeout", "0.5"], 2, "endpoint")
