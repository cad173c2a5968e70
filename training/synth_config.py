"""Typed configuration of the synthetic spotting benchmark (checked once, at construction).

Ranges are ``(low, high)`` tuples sampled uniformly per video unless a docstring says
otherwise; units are in the field names. Defaults follow CAS(ME)^2: 30 fps, 30-120 s videos,
3-5 macro and 0.5-1 micro expressions per minute.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from pfes.errors import InputError

__all__ = ["SynthConfig"]

Range = tuple[float, float]


@dataclass(frozen=True)
class SynthConfig:
    """Everything the generator samples from. Invalid values raise :class:`InputError`."""

    fps: float = 30.0
    video_length_s: Range = (30.0, 120.0)
    frame_sizes_px: tuple[tuple[int, int], ...] = ((640, 360), (1280, 720))
    face_width_px: Range = (120.0, 400.0)
    # labelled instances
    macro_per_min: Range = (3.0, 5.0)
    micro_per_min: Range = (0.5, 1.0)
    macro_duration_s: Range = (0.5, 4.0)
    micro_duration_s: Range = (0.2, 0.5)
    macro_intensity: Range = (0.7, 1.0)
    micro_intensity: Range = (0.2, 0.6)
    min_gap_frames: int = 10
    point_sd_frac: float = 0.18
    # unlabelled distractors
    blinks_per_min: Range = (4.0, 20.0)
    blink_duration_s: Range = (0.1, 0.4)
    talk_bursts_per_min: Range = (0.0, 3.0)
    talk_burst_s: Range = (1.0, 5.0)
    talk_freq_hz: Range = (2.0, 6.0)
    fidgets_per_min: Range = (2.0, 6.0)
    fidget_duration_s: Range = (0.3, 2.0)
    fidget_intensity: Range = (0.05, 0.3)
    resting_drift: float = 0.05
    saccades_per_min: Range = (10.0, 40.0)
    head_drift_deg: float = 4.0
    head_turns_per_min: Range = (0.5, 4.0)
    head_turn_deg: Range = (4.0, 20.0)
    head_max_deg: float = 20.0
    head_shift_frac: float = 0.04
    head_scale_frac: float = 0.03
    # measured: MediaPipe 0.10.21 (tracking mode) on astronaut() with sub-pixel shifts and sensor
    # noise jitters 0.2-0.24 px sd per coordinate at a 92 px face width, mostly per landmark
    # and about 0.2 px per coordinate at a 170 px face width in a warped 640x360 clip
    jitter_px_at_200px: Range = (0.15, 0.4)
    # spatially smooth tracker error (IOD units), see synth_distractors.shape_noise
    shape_noise_iod: Range = (0.003, 0.008)
    jitter_corr_frac: float = 0.4
    jitter_corr_frames: float = 4.0
    glitches_per_min: Range = (0.0, 1.5)
    dropouts_per_min: Range = (0.0, 1.0)
    dropout_frames: tuple[int, int] = (1, 30)
    # per video, AU motion is scaled by 1 - mix * (1 - TRACKER_GAIN[au]) with mix drawn from
    # this range: 0 keeps the FACS magnitudes, 1 gives what MediaPipe reports for them
    tracker_gain_mix: Range = (0.0, 1.0)
    # per video, a factor drawn from this range scales MediaPipe's measured drag of forehead,
    # face contour and nose when the eyes close (training/assets/blink_drag.npy, measured by
    # scripts/measure_blink_drag.py on real pixels); (0, 0), the default, leaves it out
    tracker_blink_drag: Range = (0.0, 0.0)
    # per video, the sd (IOD, per frame) of extra tracker noise shared by the landmarks of each
    # brow region (MediaPipe's brows jitter as a piece, about three times as much in dim light);
    # (0, 0), the default, leaves it out
    tracker_brow_jitter_iod: Range = (0.0, 0.0)
    relax_mouth: bool = True
    distractors: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.extra:
            raise InputError(f"unknown synth config keys: {sorted(self.extra)}")
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps)
                and 5.0 <= self.fps <= 1000.0):
            raise InputError(f"fps must be in [5, 1000], got {self.fps!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "extra":
                continue
            default = f.default
            if isinstance(default, bool):
                if not isinstance(v, bool):
                    raise InputError(f"{f.name} must be true or false, got {v!r}")
                continue
            if isinstance(default, (int, float)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise InputError(f"{f.name} must be a number, got {v!r}")
                continue
            if not isinstance(v, tuple):
                raise InputError(f"{f.name} must be a list, got {v!r}")
            if f.name == "frame_sizes_px":
                continue
            if len(v) != 2 or not all(isinstance(x, (int, float)) and math.isfinite(x)
                                      for x in v):
                raise InputError(f"{f.name} must be a (low, high) pair of numbers, got {v!r}")
            if v[0] < 0 or v[0] > v[1]:
                raise InputError(f"{f.name} must satisfy 0 <= low <= high, got {v!r}")
        if not self.frame_sizes_px or any(
                not isinstance(s, tuple) or len(s) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in s)
                or s[0] < 64 or s[1] < 64 for s in self.frame_sizes_px):
            raise InputError(f"frame_sizes_px must be (W, H) pairs >= 64, got "
                             f"{self.frame_sizes_px!r}")
        checks = [
            (self.video_length_s[0] >= 2.0, "video_length_s must start at >= 2 s"),
            (self.face_width_px[0] >= 20.0, "face_width_px must be >= 20"),
            (self.macro_duration_s[0] > 0 and self.micro_duration_s[0] > 0,
             "instance durations must be > 0"),
            (self.micro_duration_s[0] * self.fps >= 3,
             "micro_duration_s must span at least 3 frames"),
            (self.macro_intensity[1] <= 1.5 and self.micro_intensity[1] <= 1.5,
             "intensities must be <= 1.5"),
            (isinstance(self.min_gap_frames, int) and self.min_gap_frames >= 0,
             "min_gap_frames must be a non-negative int"),
            (0.0 <= self.point_sd_frac <= 1.0, "point_sd_frac must be in [0, 1]"),
            (self.blink_duration_s[0] > 0, "blink_duration_s must be > 0"),
            (0.0 <= self.head_drift_deg <= 45.0, "head_drift_deg must be in [0, 45]"),
            (0.0 <= self.resting_drift <= 0.5, "resting_drift must be in [0, 0.5]"),
            (self.fidget_duration_s[0] > 0, "fidget_duration_s must be > 0"),
            (0.0 <= self.head_max_deg <= 60.0, "head_max_deg must be in [0, 60]"),
            (0.0 <= self.head_shift_frac <= 1.0, "head_shift_frac must be in [0, 1]"),
            (0.0 <= self.head_scale_frac <= 0.5, "head_scale_frac must be in [0, 0.5]"),
            (0.0 <= self.jitter_corr_frac <= 1.0, "jitter_corr_frac must be in [0, 1]"),
            (self.tracker_gain_mix[1] <= 1.0, "tracker_gain_mix must lie in [0, 1]"),
            (self.tracker_blink_drag[1] <= 3.0, "tracker_blink_drag must lie in [0, 3]"),
            (self.tracker_brow_jitter_iod[1] <= 0.05,
             "tracker_brow_jitter_iod must lie in [0, 0.05]"),
            (self.jitter_corr_frames > 0, "jitter_corr_frames must be > 0"),
            (self.dropout_frames[0] >= 1 and all(isinstance(x, int) for x in self.dropout_frames),
             "dropout_frames must be integers >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(msg)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        """Build from a plain dict (e.g. JSON); unknown keys raise :class:`InputError`."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = {k: v for k, v in d.items() if k not in names}
        kw = {}
        for k, v in d.items():
            if k in names:
                if isinstance(v, list):
                    v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
                kw[k] = v
        return cls(**kw, extra=unknown)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists)."""
        out = dataclasses.asdict(self)
        out.pop("extra")
        return out

    def quiet(self) -> SynthConfig:
        """A copy with every unlabelled distractor switched off (for tests and debugging)."""
        return dataclasses.replace(self, distractors=False)
