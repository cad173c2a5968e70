"""Checkpoints: round trip, and loading never runs code from the file."""

from __future__ import annotations

import pytest
import torch

from engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from engine.model import ModelConfig, PfesNet
from pfes.errors import ModelError

_SIDE_EFFECT: list[str] = []


def _record(msg: str) -> None:
    _SIDE_EFFECT.append(msg)


class _Evil:
    def __reduce__(self):
        return (_record, ("unpickled!",))


def _net() -> PfesNet:
    torch.manual_seed(0)
    return PfesNet(ModelConfig(in_features=5, channels=8, dilations=(1, 2), proj_dim=4)).eval()


def test_round_trip_keeps_weights_and_meta(tmp_path):
    net = _net()
    p = save_checkpoint(tmp_path / "m.pt", net, {"feature_spec": {"v": 1}, "detector": {}})
    ck = load_checkpoint(p)
    assert ck.meta["feature_spec"] == {"v": 1}
    x = torch.randn(1, 12, 5)
    with torch.no_grad():
        assert torch.equal(ck.net(x).intensity, net(x).intensity)


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "config": {"in_features": 5}, "state_dict": {},
                "meta_json": "{}", "payload": _Evil()}, p)
    with pytest.raises(ModelError):
        load_checkpoint(p)
    assert _SIDE_EFFECT == []


@pytest.mark.parametrize("payload", [b"garbage", None])
def test_corrupt_or_foreign_files_are_model_errors(tmp_path, payload):
    p = tmp_path / "bad.pt"
    if payload is None:
        torch.save({"format": "someone-else/1"}, p)
    else:
        p.write_bytes(payload)
    with pytest.raises(ModelError):
        load_checkpoint(p)
    with pytest.raises(ModelError):
        load_checkpoint(tmp_path / "missing.pt")


def test_bundled_default_model_loads_with_its_metadata():
    ck = load_checkpoint(None)
    assert {"feature_spec", "detector", "training", "provenance"} <= set(ck.meta)
    # trained by the committed script's recipe
    import re
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "scripts" / "train_default_model.sh").read_text()
    recipe = re.search(r"--supervision (\w+)", script).group(1)
    assert ck.meta["training"]["config"]["supervision"] == recipe == "hard"
    assert ck.meta["provenance"]["data"]["synth"]["seed"] == 101
    subjects = int(re.search(r"--subjects (\d+)", script).group(1))
    assert ck.meta["provenance"]["data"]["synth"]["subjects"] == subjects == 144
    # the generator options of the script's config file (the tracker's blink drag)
    import json

    root = Path(__file__).resolve().parents[1]
    options = json.loads((root / "scripts" / "default_model_synth.json").read_text())
    synth_cfg = ck.meta["provenance"]["data"]["synth"]["config"]
    assert options and all(synth_cfg[k] == v for k, v in options.items())
    # and the script's choice among its seeds is recorded
    seeds = re.search(r'SEEDS=\$\{SEEDS:-"([\d ]+)"\}', script).group(1).split()
    bundle = ck.meta["bundle"]
    assert str(bundle["chosen_seed"]) in seeds == [str(c["seed"]) for c in bundle["candidates"]]
    assert ck.meta["training"]["config"]["seed"] == bundle["chosen_seed"]
