"""Time courses for the synthetic benchmark: labelled instances, blinks, talking, head motion.

All functions are pure given a ``numpy.random.Generator``; frames are 0-based and intervals
inclusive ``(start, end)``. Intensity profiles are 0 at the onset and offset frames and have a
unique maximum at the apex frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.synth_aus import EXPRESSIONS, MICRO_PATTERNS
from training.synth_config import SynthConfig

__all__ = [
    "Instance",
    "instance_profile",
    "place_instances",
    "blink_profile",
    "talk_tracks",
    "head_pose",
    "free_spans",
    "ou_noise",
    "smooth_noise",
]


@dataclass(frozen=True)
class Instance:
    """One labelled expression.

    onset/apex/offset/point: 0-based inclusive frames; kind: 'macro' | 'micro';
    aus: AU names with side suffix ('AU12' both sides, 'AU12_l' subject's left only);
    peak: intensity at the apex (fraction of full AU magnitude); expression: pattern name.
    """

    onset: int
    apex: int
    offset: int
    kind: str
    point: int
    aus: tuple[str, ...]
    peak: float
    expression: str
    profile: np.ndarray = field(compare=False, repr=False, default_factory=lambda: np.zeros(0))

    @property
    def n_frames(self) -> int:
        return self.offset - self.onset + 1


def instance_profile(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """(n,) intensity in [0, 1]: smooth onset ramp, optional slowly sagging hold, offset ramp.

    0 at index 0 and n - 1, unique maximum 1.0; ramps are raised cosines with a random power so
    onset and offset differ in shape and length (asymmetric).
    """
    if n < 3:
        raise ValueError("an instance needs at least 3 frames")
    last = n - 1.0
    if kind == "macro":
        f_on, f_hold = rng.uniform(0.2, 0.55), rng.uniform(0.0, 0.3)
    else:
        f_on, f_hold = rng.uniform(0.3, 0.6), rng.uniform(0.0, 0.15)
    ta = max(1.0, f_on * last)
    tb = min(last - 1.0, ta + f_hold * last)
    ta = min(ta, tb)
    g1, g2 = rng.uniform(0.7, 1.6), rng.uniform(0.7, 1.6)
    sag = 0.04 if tb > ta else 0.0
    u = np.arange(n, dtype=np.float64)
    rise = ((1 - np.cos(np.pi * np.clip(u / ta, 0, 1))) / 2) ** g1
    hold = 1.0 - sag * np.clip((u - ta) / max(tb - ta, 1e-9), 0, 1)
    fall = ((1 + np.cos(np.pi * np.clip((u - tb) / (last - tb), 0, 1))) / 2) ** g2
    prof = np.where(u <= ta, rise, np.where(u <= tb, hold, (1.0 - sag) * fall))
    prof[0] = prof[-1] = 0.0
    k = int(np.argmax(prof))
    prof = np.minimum(prof / prof[k], 1.0 - 1e-6)  # ties broken: the apex alone reaches 1
    prof[k] = 1.0
    return prof


def _pick_aus(rng: np.random.Generator, kind: str) -> tuple[str, tuple[str, ...]]:
    """Choose an expression: a prototype, a partial prototype, or (micro) a one-region pattern."""
    side = "l" if rng.random() < 0.5 else "r"
    if kind == "micro" and rng.random() < 0.7:
        i = int(rng.integers(len(MICRO_PATTERNS)))
        name, aus = f"micro{i}", MICRO_PATTERNS[i]
    else:
        names = sorted(EXPRESSIONS)
        name = names[int(rng.integers(len(names)))]
        aus = EXPRESSIONS[name]
        if len(aus) > 1 and rng.random() < 0.3:  # partial expression
            k = int(rng.integers(1, len(aus)))
            aus = tuple(sorted(rng.choice(aus, size=k, replace=False).tolist(),
                               key=aus.index))
            name += "_partial"
    return name, tuple(a[:-1] + "_" + side if a.endswith("u") else a for a in aus)


def place_instances(rng: np.random.Generator, n_frames: int, cfg: SynthConfig,
                    ) -> list[Instance]:
    """Sample macro and micro instances for a video of ``n_frames`` frames, sorted by onset.

    Counts are the per-video rate times the length, rounded at random; instances never
    overlap and keep at least ``cfg.min_gap_frames`` frames between one offset and the next
    onset (and from the ends).
    """
    fps, minutes = cfg.fps, n_frames / cfg.fps / 60.0
    wanted: list[tuple[str, int]] = []
    for kind, rate, dur in (("macro", cfg.macro_per_min, cfg.macro_duration_s),
                            ("micro", cfg.micro_per_min, cfg.micro_duration_s)):
        expect = rng.uniform(*rate) * minutes  # stochastic rounding keeps the rate steady
        n = int(expect) + int(rng.random() < expect - int(expect))
        for _ in range(n):
            if kind == "macro":  # log-uniform: many short, some long
                d = np.exp(rng.uniform(np.log(dur[0]), np.log(dur[1])))
            else:
                d = rng.uniform(*dur)
            lo, hi = max(3, int(np.ceil(dur[0] * fps - 1e-9))), max(3, int(dur[1] * fps + 1e-9))
            wanted.append((kind, int(np.clip(round(d * fps), lo, hi))))
    wanted.sort(key=lambda w: -w[1])  # place long ones first
    gap = cfg.min_gap_frames
    taken: list[tuple[int, int]] = []
    out: list[Instance] = []
    for kind, dur_f in wanted:
        for _ in range(50):
            on = int(rng.integers(gap, max(gap + 1, n_frames - gap - dur_f)))
            off = on + dur_f - 1
            if off > n_frames - 1 - gap:
                continue
            if all(off + gap < a or on > b + gap for a, b in taken):
                break
        else:
            continue
        prof = instance_profile(dur_f, rng, kind)
        apex = on + int(np.argmax(prof))
        point = int(np.clip(round(apex + rng.normal(0, cfg.point_sd_frac * dur_f)), on, off))
        rng_i = cfg.macro_intensity if kind == "macro" else cfg.micro_intensity
        expr, aus = _pick_aus(rng, kind)
        taken.append((on, off))
        out.append(Instance(on, apex, off, kind, point, aus, float(rng.uniform(*rng_i)), expr,
                            prof))
    out.sort(key=lambda i: i.onset)
    return out


def free_spans(n_frames: int, busy: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Inclusive spans of frames at least ``gap`` frames away from every busy span."""
    mask = np.ones(n_frames, dtype=bool)
    for a, b in busy:
        mask[max(0, a - gap):max(0, min(n_frames, b + gap + 1))] = False
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def blink_profile(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) eyelid closure for one blink: fast close, brief closed phase, slower reopening."""
    u = np.linspace(0.0, 1.0, n)
    tc = rng.uniform(0.25, 0.4)
    th = tc + rng.uniform(0.0, 0.15)
    close = (1 - np.cos(np.pi * np.clip(u / tc, 0, 1))) / 2
    reopen = (1 + np.cos(np.pi * np.clip((u - th) / (1 - th), 0, 1))) / 2
    return np.where(u <= th, close, reopen) * rng.uniform(0.85, 1.0)


def ou_noise(rng: np.random.Generator, n: int, tau: float, sd: float,
                  k: int = 1) -> np.ndarray:
    """(n, k) Ornstein-Uhlenbeck noise with time constant ``tau`` frames and stationary sd."""
    rho = float(np.exp(-1.0 / max(tau, 1e-6)))
    e = rng.normal(0.0, sd * np.sqrt(1 - rho**2), size=(n, k))
    out = np.empty((n, k))
    x = rng.normal(0.0, sd, size=k)
    for t in range(n):
        x = rho * x + e[t]
        out[t] = x
    return out


def smooth_noise(rng: np.random.Generator, n: int, tau: float, sd: float, k: int = 1,
                 smooth: float = 10.0) -> np.ndarray:
    """(n, k) smooth random drift: OU noise (time constant ``tau`` frames) passed through a
    second exponential smoother (``smooth`` frames) so the path has no frame-to-frame
    roughness, rescaled to the stationary sd."""
    x = ou_noise(rng, n, tau, 1.0, k)
    a = float(np.exp(-1.0 / max(smooth, 1e-6)))
    y = np.empty_like(x)
    acc = x[0].copy()
    for t in range(n):
        acc = a * acc + (1 - a) * x[t]
        y[t] = acc
    # stationary variance of the cascade, relative to the OU's unit variance
    r = float(np.exp(-1.0 / max(tau, 1e-6)))
    var = (1 - a) ** 2 * (1 + a * r) / ((1 - a * a) * (1 - a * r)) if smooth > 0 else 1.0
    return y * (sd / np.sqrt(var))


def talk_tracks(rng: np.random.Generator, n: int, fps: float, freq_hz: tuple[float, float],
                ) -> dict[str, np.ndarray]:
    """AU activations (n,) for one talking burst of n frames: jaw and lip oscillation."""
    f = np.clip(rng.uniform(*freq_hz) + ou_noise(rng, n, fps * 0.5, 0.7)[:, 0],
                freq_hz[0], freq_hz[1])
    phase = np.cumsum(2 * np.pi * f / fps) + rng.uniform(0, 2 * np.pi)
    osc = ((1 - np.cos(phase)) / 2) ** 1.3
    amp = np.clip(rng.uniform(0.5, 1.0) + ou_noise(rng, n, fps * 0.2, 0.25)[:, 0], 0.1, 1.3)
    ramp = max(2, int(0.12 * fps))
    env = np.ones(n)
    r = (1 - np.cos(np.pi * np.arange(ramp) / ramp)) / 2
    env[:ramp] = r[: min(ramp, n)] if n >= ramp else env[:n]
    env[-ramp:] = np.minimum(env[-ramp:], r[::-1][-min(ramp, n):])
    jaw = rng.uniform(0.25, 0.6)
    rounding = np.clip(ou_noise(rng, n, fps * 0.15, 0.5)[:, 0], 0, None)
    return {
        "AU26": jaw * amp * osc * env,
        "AU25": (0.25 + 0.5 * amp * osc) * env,
        "AU20": 0.2 * np.clip(np.sin(phase * 0.5), 0, None) * env,
        "AU23": 0.4 * rounding * env,
    }


def _step(n: int, start: float, length: float) -> np.ndarray:
    u = np.clip((np.arange(n) - start) / max(length, 1e-6), 0.0, 1.0)
    return (1 - np.cos(np.pi * u)) / 2


def head_pose(rng: np.random.Generator, n: int, cfg: SynthConfig) -> np.ndarray:
    """(n, 6) head pose: yaw, pitch, roll (degrees), shift x, shift y (face widths), log-scale.

    Slow drift (smoothed OU noise, time constant 2-6 s) plus quick turns: a raised-cosine move of
    4-20 degrees over 0.2-0.8 s, held 0.5-4 s, and (usually) a return. Angles are clipped to
    +-cfg.head_max_deg.
    """
    fps = cfg.fps
    pose = np.zeros((n, 6))
    if not cfg.distractors:
        return pose
    tau = rng.uniform(2.0, 6.0) * fps
    sm = 0.3 * fps  # no frame-to-frame roughness: heads drift smoothly
    pose[:, :3] = smooth_noise(rng, n, tau, cfg.head_drift_deg, 3, sm) * np.array([1, 0.8, 0.5])
    pose[:, 3:5] = smooth_noise(rng, n, tau, cfg.head_shift_frac, 2, sm)
    pose[:, 5] = smooth_noise(rng, n, tau, cfg.head_scale_frac, 1, sm)[:, 0]
    n_turns = int(rng.poisson(rng.uniform(*cfg.head_turns_per_min) * n / fps / 60.0))
    for _ in range(n_turns):
        axis = int(rng.choice(3, p=[0.6, 0.3, 0.1]))
        amp = rng.uniform(*cfg.head_turn_deg) * rng.choice([-1.0, 1.0])
        t0, move = rng.uniform(0, n), rng.uniform(0.2, 0.8) * fps
        hold = rng.uniform(0.5, 4.0) * fps
        bump = _step(n, t0, move)
        if rng.random() < 0.8:
            bump -= _step(n, t0 + move + hold, rng.uniform(0.2, 1.0) * fps)
        pose[:, axis] += amp * bump
        pose[:, 3] += np.deg2rad(amp) * 0.3 * bump * (axis == 0)
    pose[:, :3] = np.clip(pose[:, :3], -cfg.head_max_deg, cfg.head_max_deg)
    return pose
