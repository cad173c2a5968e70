"""Feature spec: JSON round trip, and a clear ModelError on any mismatch."""

import json

import pytest

from calibration.neutral import NeutralConfig
from pfes.errors import ModelError
from stream.features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    FeatureConfig,
    check_feature_spec,
    config_from_spec,
    feature_spec,
)


def test_spec_round_trips_through_json():
    spec = json.loads(json.dumps(feature_spec()))
    assert spec["version"] == FEATURE_VERSION
    assert spec["names"] == list(FEATURE_NAMES) and spec["n_features"] == len(FEATURE_NAMES)
    assert spec["reference_fps"] == 30.0
    check_feature_spec(spec)
    assert config_from_spec(spec) == FeatureConfig()


def test_custom_config_spec_passes_and_rebuilds():
    cfg = FeatureConfig(lags_frames_at_30fps=(3, 8), neutral=NeutralConfig(tau_s=9.0))
    spec = json.loads(json.dumps(feature_spec(cfg)))
    check_feature_spec(spec)
    assert config_from_spec(spec) == cfg
    with pytest.raises(ModelError):
        check_feature_spec(spec, FeatureConfig())


def _one_line(excinfo) -> None:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update(version="pfes.features/0"),
        lambda s: s.update(names=s["names"][:-1]),
        lambda s: s["names"].reverse(),
        lambda s: s.update(n_features=12),
        lambda s: s.update(reference_fps=25.0),
        lambda s: s.pop("names"),
    ],
)
def test_mismatch_raises_model_error(change):
    spec = feature_spec()
    change(spec)
    with pytest.raises(ModelError) as excinfo:
        check_feature_spec(spec)
    _one_line(excinfo)


@pytest.mark.parametrize("bad", [None, [], "pfes.features/1", {"version": FEATURE_VERSION}])
def test_missing_or_malformed_spec_raises_model_error(bad):
    with pytest.raises(ModelError) as excinfo:
        check_feature_spec(bad)
    _one_line(excinfo)


def test_malformed_neutral_settings_raise_model_error():
    spec = feature_spec()
    spec["neutral"] = {"tau_s": -1.0}
    with pytest.raises(ModelError):
        check_feature_spec(spec)


def test_checkpoint_feature_settings_are_used_offline(tmp_path):
    """A model trained with non-default lags gets those lags at inference, not the defaults."""
    import numpy as np
    import torch

    from engine.checkpoint import Checkpoint
    from engine.model import ModelConfig, PfesNet
    from stream.features import FeatureConfig, extract_features, feature_spec
    from training.infer import video_features

    cfg = FeatureConfig(lags_frames_at_30fps=(3, 7))
    spec = feature_spec(cfg)
    rng = np.random.default_rng(0)
    lm = (rng.normal(0, 0.3, (40, 478, 3)) + np.linspace(0, 200, 478)[None, :, None]).astype(np.float32)
    valid = np.ones(40, bool)
    want, _ = extract_features(lm, valid, 30.0, cfg)
    got, _ = video_features(lm, valid, 30.0, spec)
    np.testing.assert_array_equal(got, want)
    net = PfesNet(ModelConfig(in_features=want.shape[1], channels=8, dilations=(1,), proj_dim=4))
    ck = Checkpoint(net=net.eval(), meta={"feature_spec": spec}, path=tmp_path / "m.pt")
    from training.infer import predict_instances

    with torch.no_grad():
        predict_instances(ck, lm, valid, 30.0)  # would raise a shape error with default lags
