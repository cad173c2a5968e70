"""Unlabelled facial activity for the synthetic benchmark: blinks, talking, fidgets, gaze, drift.

Real spotting videos are full of facial motion nobody labels: blinks, speech, small mouth and
brow movements (swallowing, lip pressing, a brief frown), and a resting face that slowly
changes. These functions add such activity to the AU channel matrix of a video, away from the
labelled instances where that matters (talking and fidgets keep ``min_gap_frames`` from them;
blinks and drift may overlap them, as in real data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.synth_config import SynthConfig
from training.synth_timeline import (
    blink_profile,
    free_spans,
    instance_profile,
    ou_noise,
    talk_tracks,
)

__all__ = ["Distractors", "add_distractors", "place_span", "shape_noise", "FIDGET_AUS",
           "DRIFT_AUS"]

# single actions people make without meaning an expression (never labelled)
FIDGET_AUS = ("AU17", "AU24", "AU23", "AU25", "AU14u", "AU4", "AU1", "AU2", "AU12u", "AU10",
              "AU15", "AU20", "AU7")
# slow changes of the resting face (mouth relaxing, brows settling)
DRIFT_AUS = ("AU12", "AU15", "AU17", "AU24", "AU4", "AU1", "AU25", "AU7")


@dataclass
class Distractors:
    """Inclusive (start, end) frame spans of the unlabelled events added to a video."""

    blinks: list[tuple[int, int]] = field(default_factory=list)
    talks: list[tuple[int, int]] = field(default_factory=list)
    fidgets: list[tuple[int, int]] = field(default_factory=list)


def place_span(rng: np.random.Generator, length: int, spans: list[tuple[int, int]],
               ) -> tuple[int, int] | None:
    """A random inclusive span of ``length`` frames inside one of ``spans`` (or None)."""
    fits = [(a, b) for a, b in spans if b - a + 1 >= length]
    if not fits:
        return None
    a, b = fits[int(rng.integers(len(fits)))]
    s = int(rng.integers(a, b - length + 2))
    return s, s + length - 1


def _sides(au: str, rng: np.random.Generator) -> tuple[str, list[str]]:
    if au.endswith("u"):
        return au[:-1], ["l" if rng.random() < 0.5 else "r"]
    return au, ["r", "l"]


def add_distractors(rng: np.random.Generator, chan: np.ndarray, pose: np.ndarray,
                    busy: list[tuple[int, int]], cfg: SynthConfig,
                    channel: dict[str, int]) -> Distractors:
    """Add blinks, talking, fidgets, gaze shifts and resting-face drift to ``chan`` (T, K).

    busy: labelled instance spans; channel: "AU12_l" -> column of ``chan``; pose (T, 6) gets
    small nods while talking. Returns the event spans.
    """
    n, fps = len(chan), cfg.fps
    minutes = n / fps / 60.0
    out = Distractors()
    for _ in range(int(rng.poisson(rng.uniform(*cfg.blinks_per_min) * minutes))):
        m = max(3, int(round(rng.uniform(*cfg.blink_duration_s) * fps)))
        s = int(rng.integers(0, max(1, n - m)))
        prof = blink_profile(m, rng)
        e = min(n, s + m)
        for side in ("r", "l"):
            c = channel[f"AU43_{side}"]
            chan[s:e, c] = np.maximum(chan[s:e, c], prof[: e - s] * rng.uniform(0.95, 1.0))
        out.blinks.append((s, e - 1))
    for _ in range(int(rng.poisson(rng.uniform(*cfg.talk_bursts_per_min) * minutes))):
        m = max(5, int(round(rng.uniform(*cfg.talk_burst_s) * fps)))
        span = place_span(rng, m, free_spans(n, busy + out.talks, cfg.min_gap_frames))
        if span is None:
            continue
        s, e = span
        for au, track in talk_tracks(rng, m, fps, cfg.talk_freq_hz).items():
            for side in ("r", "l"):
                chan[s:e + 1, channel[f"{au}_{side}"]] += track
        pose[s:e + 1, 1] += rng.uniform(0.5, 2.0) * np.sin(
            np.arange(m) * 2 * np.pi * rng.uniform(0.5, 1.5) / fps)
        out.talks.append((s, e))
    for _ in range(int(rng.poisson(rng.uniform(*cfg.fidgets_per_min) * minutes))):
        m = max(5, int(round(rng.uniform(*cfg.fidget_duration_s) * fps)))
        span = place_span(rng, m, free_spans(n, busy, cfg.min_gap_frames))
        if span is None:
            continue
        s, e = span
        au, sides = _sides(FIDGET_AUS[int(rng.integers(len(FIDGET_AUS)))], rng)
        prof = instance_profile(m, rng, "macro") * rng.uniform(*cfg.fidget_intensity)
        for side in sides:
            chan[s:e + 1, channel[f"{au}_{side}"]] += prof
        out.fidgets.append((s, e))
    if cfg.saccades_per_min[1] > 0:  # fixations joined by 2-3 frame saccades, both eyes
        gaze = np.zeros((n, 2))
        t, cur = 0, np.zeros(2)
        rate = rng.uniform(*cfg.saccades_per_min) / 60.0
        while t < n:
            nxt = np.clip(cur + rng.normal(0.0, 0.5, 2), -1.0, 1.0)
            nxt[1] = max(nxt[1], -0.5)  # people look down more than up
            dur = int(rng.integers(2, 4))
            ramp = (1 - np.cos(np.pi * np.arange(1, dur + 1) / dur)) / 2
            stop = min(n, t + dur)
            gaze[t:stop] = cur + (nxt - cur) * ramp[: stop - t, None]
            hold = max(1, int(rng.exponential(1.0 / rate) * fps))
            gaze[stop:stop + hold] = nxt
            t, cur = stop + hold, nxt
        for k, name in enumerate(("gaze_x", "gaze_y")):
            for side in ("r", "l"):
                chan[:, channel[f"{name}_{side}"]] += gaze[:, k]
    if cfg.resting_drift > 0:
        tau = rng.uniform(5.0, 15.0) * fps
        drift = ou_noise(rng, n, tau, cfg.resting_drift, len(DRIFT_AUS))
        for k, au in enumerate(DRIFT_AUS):
            for side in ("r", "l"):
                chan[:, channel[f"{au}_{side}"]] += drift[:, k]
    out.blinks.sort()
    out.talks.sort()
    out.fidgets.sort()
    return out


def shape_noise(rng: np.random.Generator, mesh: np.ndarray, pose: np.ndarray, sd_iod: float,
                n_fields: int = 12, tau_frames: float = 3.0) -> np.ndarray:
    """Spatially smooth tracker error (T, 478, 3) float32 in canonical IOD units.

    A real face mesh does not jitter point by point only: neighbouring landmarks err together
    (the model's shape prior), and more so while the head moves. This is a sum of ``n_fields``
    random smooth bumps (Gaussian, 0.2-0.5 IOD wide, random direction) with AR(1) weights of
    standard deviation ``sd_iod``, scaled up by the head's angular speed (x2 at 1 deg/frame).
    mesh: (478, 3) canonical shape; pose: (T, 6) as from ``head_pose``.
    """
    n = len(pose)
    centres = mesh[rng.integers(0, len(mesh), size=n_fields)]
    widths = rng.uniform(0.2, 0.5, size=n_fields)
    dirs = rng.normal(size=(n_fields, 3)) * np.array([1.0, 1.0, 0.5])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    d2 = ((mesh[None, :, :2] - centres[:, None, :2]) ** 2).sum(-1)  # (K, 478)
    fields = np.exp(-d2 / (2 * widths[:, None] ** 2))[:, :, None] * dirs[:, None, :]
    coef = ou_noise(rng, n, tau_frames, sd_iod, n_fields)  # (T, K)
    speed = np.zeros(n)
    speed[1:] = np.abs(np.diff(pose[:, :3], axis=0)).sum(axis=1)
    coef *= (1.0 + speed)[:, None]
    out = coef.astype(np.float32) @ fields.reshape(n_fields, -1).astype(np.float32)
    return out.reshape(n, len(mesh), 3)
