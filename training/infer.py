"""The offline inference path: landmarks -> features -> network -> instances.

This is what ``pfes eval`` scores and what the live pipeline must reproduce exactly (a parity
test compares them): features from ``stream.features.extract_features`` (the same code the
live extractor runs), the network's offline ``forward`` (equal to its streaming ``step``), and
the online peak detector run over the whole curve.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.checkpoint import Checkpoint
from engine.detector import DetectorConfig, Instance, detect
from engine.model import PfesNet
from pfes.errors import InputError, ModelError
from training.evaluate import to_intervals

__all__ = ["video_features", "predict_curves", "predict_instances", "to_intervals",
           "detector_config_of"]


def video_features(
    landmarks: np.ndarray, valid: np.ndarray, fps: float, spec: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 478, 3), (T,) -> features (T, F) float32 and feature validity (T,) bool.

    ``spec``: a checkpoint's ``feature_spec`` (features computed with the settings it records);
    None: this code's default settings.
    """
    from stream.features import config_from_spec, extract_features

    return extract_features(landmarks, valid, fps, config_from_spec(spec) if spec else None)


@torch.no_grad()
def predict_curves(net: PfesNet, feats: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """features (T, F), valid (T,) -> intensity (T,) and apex (T, 2), float32 numpy."""
    was_training = net.training
    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))[None]
    v = torch.from_numpy(np.asarray(valid, dtype=bool))[None]
    out = net(x, v)
    net.train(was_training)
    return out.intensity[0].numpy(), out.apex[0].numpy()


def detector_config_of(ckpt: Checkpoint) -> DetectorConfig:
    """The operating point stored in the checkpoint (defaults if it has none)."""
    d = ckpt.meta.get("detector")
    if not d:
        return DetectorConfig()
    try:
        return DetectorConfig.from_dict(dict(d))
    except (InputError, TypeError, ValueError) as e:
        raise ModelError(f"{ckpt.path}: bad detector settings in checkpoint: {e}") from e


def predict_instances(
    ckpt: Checkpoint,
    landmarks: np.ndarray,
    valid: np.ndarray,
    fps: float,
    detector: DetectorConfig | None = None,
) -> list[Instance]:
    """Landmarks of one track (T, 478, 3) -> the instances the live pipeline would emit."""
    feats, fvalid = video_features(landmarks, valid, fps, ckpt.meta.get("feature_spec"))
    inten, apex = predict_curves(ckpt.net, feats, fvalid)
    return detect(inten, apex, fvalid, detector or detector_config_of(ckpt), fps)


def predict_instances_real_face(
    ckpt: Checkpoint,
    landmarks: np.ndarray,
    valid: np.ndarray,
    fps: float,
    blendshape_model,
    detector: DetectorConfig | None = None,
    blendshapes: np.ndarray | None = None,
) -> list[Instance]:
    """As :func:`predict_instances` with the live pipeline's real-face stage
    (``stream.expression.RealFaceSpotter``), pushed frame by frame exactly as live.
    Offsets are clipped to the last frame. ``blendshapes``: (T, 52) from
    ``blendshapes_per_frame`` if the caller already has them."""
    import dataclasses

    from stream.expression import RealFaceSpotter

    feats, fvalid = video_features(landmarks, valid, fps, ckpt.meta.get("feature_spec"))
    inten, apex = predict_curves(ckpt.net, feats, fvalid)
    from stream.expression import blendshapes_per_frame

    bs = blendshapes if blendshapes is not None else blendshapes_per_frame(
        blendshape_model, landmarks, valid)
    sp = RealFaceSpotter(detector or detector_config_of(ckpt), fps)
    out: list[Instance] = []
    for t in range(len(inten)):
        out += sp.push(t, float(inten[t]), apex[t], bool(fvalid[t]), bs[t])
    out += sp.flush()
    last = len(inten) - 1
    return [dataclasses.replace(i, offset=min(i.offset, last)) for i in out]
