"""Offline plots of one video: intensity curve, apex probabilities, events, ground truth.

:func:`plot_video` draws what the model saw in one video to a PNG (matplotlib's Agg canvas,
no pyplot state, no display needed); :func:`plot_dataset` does it for every video of a
dataset directory (``pfes eval --plots DIR``); :func:`curves_for` computes what is drawn
from a landmark series with the offline inference path (``training.infer``: the same
features, network and detector as the live pipeline).

Two panels share the time axis (seconds): on top the intensity with the detector's open and
close thresholds, predicted events as shaded spans (blue macro, red micro, apex marked) and
ground truth as bars under the curve; below, the apex branch's macro and micro probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.detector import DetectorConfig
from pfes.errors import InputError
from training.evaluate import Interval

__all__ = ["VideoCurves", "curves_for", "plot_video", "plot_dataset"]

KIND_COLOURS = {"macro": "#1971c2", "micro": "#c2255c"}


@dataclass
class VideoCurves:
    """One video's model outputs. intensity (T,), apex (T, 2) [macro, micro], valid (T,)."""

    name: str
    fps: float
    intensity: np.ndarray
    apex: np.ndarray
    valid: np.ndarray
    predicted: list[Interval]
    truth: list[Interval]
    detector: DetectorConfig


def curves_for(
    ckpt,
    name: str,
    landmarks: np.ndarray,
    valid: np.ndarray,
    fps: float,
    truth: Sequence[Interval] = (),
    detector: DetectorConfig | None = None,
    feats: tuple[np.ndarray, np.ndarray] | None = None,
) -> VideoCurves:
    """Run the model on one video (landmarks (T, 478, 3) px, or ready ``feats``)."""
    from engine.detector import detect
    from training.infer import detector_config_of, predict_curves, to_intervals, video_features

    det = detector or detector_config_of(ckpt)
    f, fvalid = (
        feats
        if feats is not None
        else video_features(landmarks, valid, fps, ckpt.meta.get("feature_spec"))
    )
    inten, apex = predict_curves(ckpt.net, f, fvalid)
    pred = to_intervals(detect(inten, apex, fvalid, det, fps))
    return VideoCurves(
        name,
        float(fps),
        np.asarray(inten, np.float32),
        np.asarray(apex, np.float32),
        np.asarray(fvalid, bool),
        pred,
        list(truth),
        det,
    )


def plot_video(
    c: VideoCurves, out: str | Path, title: str | None = None, width_in: float = 12.0
) -> Path:
    """Draw ``c`` to the PNG ``out`` (parent folders made); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    out = Path(out)
    t = np.arange(len(c.intensity)) / c.fps
    inten = np.where(c.valid, c.intensity, np.nan)
    fig = Figure(figsize=(width_in, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1))
    ymax = max(1.05, float(np.nanmax(inten)) * 1.05 if np.isfinite(inten).any() else 1.05)
    for iv in c.predicted:
        a, b = iv.onset / c.fps, (iv.offset + 1) / c.fps
        ax.axvspan(a, b, color=KIND_COLOURS.get(iv.kind, "grey"), alpha=0.18, lw=0)
        if iv.apex is not None:
            ax.axvline(iv.apex / c.fps, color=KIND_COLOURS.get(iv.kind, "grey"), lw=0.8)
    for iv in c.truth:
        ax.hlines(
            -0.06 * ymax,
            iv.onset / c.fps,
            (iv.offset + 1) / c.fps,
            lw=6,
            color=KIND_COLOURS.get(iv.kind, "grey"),
        )
    ax.plot(t, inten, color="#222", lw=1.2, label="intensity")
    ax.axhline(c.detector.open_threshold, color="#d62728", ls="--", lw=0.9, label="open threshold")
    ax.axhline(
        c.detector.close_threshold, color="#ff7f0e", ls="--", lw=0.9, label="close threshold"
    )
    ax.set_ylim(-0.12 * ymax, 1.3 * ymax)  # room for the legend above the curve
    ax.set_ylabel("intensity")
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Patch(color=KIND_COLOURS["macro"], alpha=0.3, label="predicted macro"),
        Patch(color=KIND_COLOURS["micro"], alpha=0.3, label="predicted micro"),
    ]
    if c.truth:
        handles.append(Patch(color="#555", label="ground truth (bars, coloured by kind)"))
    ax.legend(handles=handles, loc="upper right", fontsize=8, ncol=3)
    n_tp = _matched(c.predicted, c.truth)
    ax.set_title(
        title
        or (
            f"{c.name}: {len(c.predicted)} predicted"
            + (f", {len(c.truth)} true, {n_tp} matched (IoU >= 0.5, same kind)" if c.truth else "")
        ),
        fontsize=10,
    )
    ax2.plot(
        t,
        np.where(c.valid, c.apex[:, 0], np.nan),
        color=KIND_COLOURS["macro"],
        lw=1,
        label="P(apex, macro)",
    )
    ax2.plot(
        t,
        np.where(c.valid, c.apex[:, 1], np.nan),
        color=KIND_COLOURS["micro"],
        lw=1,
        label="P(apex, micro)",
    )
    ax2.set_ylim(-0.02, 1.3)
    ax2.set_ylabel("apex prob.")
    ax2.set_xlabel("time (s)")
    ax2.legend(loc="upper right", fontsize=8, ncol=2)
    ax2.set_xlim(0, max(t[-1] if len(t) else 1.0, 1e-3))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    except OSError as e:
        raise InputError(f"cannot write plot {out}: {e.strerror or e}") from e
    return out


def _matched(pred: Sequence[Interval], truth: Sequence[Interval]) -> int:
    from training.evaluate import match_video

    return sum(match_video(list(pred), list(truth), kind)[0] for kind in ("macro", "micro"))


def plot_dataset(
    data: str | Path,
    model: str | Path | None,
    out_dir: str | Path,
    verifier: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """One PNG per video of a dataset directory, ``<out_dir>/<video>.png``; returns the paths."""
    import dataclasses

    from engine.checkpoint import load_checkpoint
    from training.dataset import load_dataset
    from training.infer import detector_config_of
    from training.prepare import prepare_videos

    ckpt = load_checkpoint(model)
    ds = load_dataset(data)
    videos, fps = prepare_videos(ds, feature_spec=ckpt.meta.get("feature_spec"))
    det = detector_config_of(ckpt)
    if not verifier:
        det = dataclasses.replace(det, instance_verifier=())
    paths = []
    for v in videos:
        c = curves_for(
            ckpt, v.name, np.empty(0), v.valid, fps, v.truth, det, feats=(v.feats, v.valid)
        )
        paths.append(plot_video(c, Path(out_dir) / f"{_safe(v.name)}.png"))
        if progress is not None:
            progress(f"plot {paths[-1]}")
    return paths


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
