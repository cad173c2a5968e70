"""Online peak detector: a per-frame intensity curve in, expression instances out.

The offline multi-threshold search of method.md becomes a streaming detector with hysteresis,
run per track:

* a *run* starts at the first frame with intensity above ``close_threshold`` and becomes an
  instance candidate once some frame in it rises above ``open_threshold``;
* it closes at the first frame below ``close_threshold`` (or on an invalid frame, or at
  ``flush()``); onset / offset are the first / last frame of the run, apex its argmax. With
  ``merge_gap_s`` > 0 a dip below ``close_threshold`` that lasts at most that long does not
  close the run (one expression whose intensity sags is not split in two); the run then
  becomes final that much later;
* a run shorter than ``pad_to_s`` is widened around its apex to that length (a brief peak of a
  causal intensity curve marks an expression longer than the peak); the widened offset may
  lie a few frames after the frame at which the instance is emitted;
* a macro instance's offset is moved ``offset_extend`` x its run length later: a causal
  intensity curve falls while the face still holds the expression and relaxes, so the run
  ends early (a predicted offset, again possibly after the emitting frame);
* the instance is classified macro or micro by the apex branch, read either at the apex frame
  or at the closing frame (``classify_at``): micro when it is no longer than the micro limit
  and the micro sigmoid reaches ``micro_prob_threshold`` (each class thresholded on its own,
  as the reference's proposals are), macro otherwise;
* optionally (``instance_classifier``, fitted on selection subjects by
  ``calibration.instance_classifier``), a run no longer than the micro limit is classified by a
  logistic model over the whole run instead (:data:`INSTANCE_FEATURES`: the two apex
  sigmoids, the run's duration, its mean intensity and the apex sigmoids over the run): micro
  when its probability reaches ``instance_threshold``. The apex branch alone hardly tells a
  micro-expression from a short macro-expression (both peak briefly); how long the run lasts
  and how high the intensity stays over it do;
* optionally (``instance_verifier``, fitted the same way, after the classifier), a run no
  longer than the micro limit is dropped when a second logistic model over the same features
  gives it a probability below ``verify_threshold`` of being an expression at all: on the
  selection subjects about a third of the brief runs match nothing (fidgets, tracker glitches,
  the brief tail of a longer expression), and the whole run tells many of them apart;
* its score is the causal version of the outer-inner contrast: mean intensity inside the run
  minus mean intensity in a band before the onset (``band_ratio`` x duration), plus 0.2 x the
  chosen class probability.

Verbs: ``push(frame, intensity, apex_scores, valid)`` returns the instances that are final at
this frame (a closed run); nothing returned is ever revised. ``flush()`` closes the open run at
the end of a stream or when a track is lost; ``reset()`` forgets everything (new track).
:func:`detect` runs the same code over a whole curve, so the live pipeline and the offline
evaluation give identical instances for identical curves.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from pfes.errors import InputError

__all__ = ["DetectorConfig", "Instance", "PeakDetector", "detect", "reshape", "INSTANCE_FEATURES",
           "instance_features", "temper"]

MACRO, MICRO = "macro", "micro"

#: inputs of the optional instance classifier, in order (probabilities after temperature)
INSTANCE_FEATURES = ("p_micro", "p_macro", "duration_s", "mean_intensity", "max_p_micro",
                     "mean_p_micro", "mean_p_macro")


@dataclass(frozen=True)
class DetectorConfig:
    """Operating point of the detector. Durations in seconds (converted with the stream fps)."""

    open_threshold: float = 0.5
    close_threshold: float = 0.3
    min_duration_s: float = 0.15
    micro_max_duration_s: float = 0.55
    macro_max_duration_s: float = 8.0
    classify_at: str = "apex"  # "apex" or "close"
    micro_prob_threshold: float = 0.5
    # False (default): micro when short enough and p_micro >= micro_prob_threshold, as the
    # reference thresholds each class on its own; True: also require p_micro > p_macro.
    micro_over_macro: bool = False
    band_ratio: float = 0.2
    min_score: float = 0.0
    merge_gap_s: float = 0.0  # dips below close_threshold up to this long do not end a run
    pad_to_s: float = 0.0  # shorter instances are widened around the apex to this length
    offset_extend: float = 0.0  # macro offsets move this fraction of the run length later
    apex_temperature: tuple[float, float] = (1.0, 1.0)  # macro, micro (calibration/temperature)
    # logistic model for runs no longer than the micro limit: one weight per INSTANCE_FEATURES
    # entry, then the bias; () = off (the apex branch decides, as above)
    instance_classifier: tuple[float, ...] = ()
    instance_threshold: float = 0.5  # micro when the instance classifier's probability >= this
    # logistic model over the same features: the probability that a brief run is an expression
    # at all (weights, then the bias); () = off (every run that passes the thresholds is kept)
    instance_verifier: tuple[float, ...] = ()
    verify_threshold: float = 0.5  # a brief run is dropped when the verifier's probability < this

    def __post_init__(self) -> None:
        object.__setattr__(self, "apex_temperature", tuple(float(t) for t in self.apex_temperature))
        if len(self.apex_temperature) != 2 or min(self.apex_temperature) <= 0:
            raise InputError("apex_temperature must be two positive numbers")
        for name in ("instance_classifier", "instance_verifier"):
            try:
                ic = tuple(float(w) for w in getattr(self, name))
            except (TypeError, ValueError) as e:
                raise InputError(f"{name} must be numbers: {e}") from e
            object.__setattr__(self, name, ic)
            if ic and (len(ic) != len(INSTANCE_FEATURES) + 1 or not all(math.isfinite(w) for w in ic)):
                raise InputError(f"{name} needs {len(INSTANCE_FEATURES) + 1} finite numbers "
                                 f"(weights of {', '.join(INSTANCE_FEATURES)}, then the bias), got {len(ic)}")
        for name in ("open_threshold", "close_threshold", "min_duration_s", "micro_max_duration_s",
                     "macro_max_duration_s", "micro_prob_threshold", "band_ratio", "min_score",
                     "merge_gap_s", "pad_to_s", "offset_extend", "instance_threshold", "verify_threshold"):
            if not isinstance(getattr(self, name), (int, float)) or isinstance(getattr(self, name), bool):
                raise InputError(f"detector {name} must be a number, got {getattr(self, name)!r}")
        if not 0.0 <= self.close_threshold <= self.open_threshold <= 1.0:
            raise InputError("detector thresholds need 0 <= close_threshold <= open_threshold <= 1")
        if not 0 < self.min_duration_s <= self.micro_max_duration_s <= self.macro_max_duration_s:
            raise InputError("detector durations need 0 < min <= micro_max <= macro_max")
        if self.merge_gap_s < 0 or self.pad_to_s < 0 or self.offset_extend < 0:
            raise InputError("detector merge_gap_s, pad_to_s and offset_extend must be >= 0")
        if self.classify_at not in ("apex", "close"):
            raise InputError("classify_at must be 'apex' or 'close'")
        for name in ("instance_threshold", "verify_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1]")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["apex_temperature"] = list(self.apex_temperature)
        d["instance_classifier"] = list(self.instance_classifier)
        d["instance_verifier"] = list(self.instance_verifier)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DetectorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown detector config keys: {sorted(unknown)}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise InputError(f"bad detector config: {e}") from e


@dataclass(frozen=True)
class Instance:
    """One spotted expression. Frames are 0-based, inclusive."""

    onset: int
    apex: int
    offset: int
    kind: str  # "macro" | "micro"
    score: float
    class_prob: float  # probability of ``kind`` from the apex branch
    macro_prob: float
    micro_prob: float
    closed_frame: int  # the frame at which the instance became final

    @property
    def length(self) -> int:
        return self.offset - self.onset + 1


class PeakDetector:
    """Streaming hysteresis detector for one track (see module docstring)."""

    def __init__(self, cfg: DetectorConfig | None = None, fps: float = 30.0):
        if not fps > 0:
            raise InputError(f"fps must be > 0, got {fps}")
        self.cfg = cfg or DetectorConfig()
        self.fps = float(fps)
        c = self.cfg
        self._min_len = max(1, int(round(c.min_duration_s * fps)))
        self._micro_max = int(round(c.micro_max_duration_s * fps))
        self._macro_max = int(round(c.macro_max_duration_s * fps))
        self._band_max = int(np.ceil(c.band_ratio * self._macro_max)) + 1
        self._gap_max = int(round(c.merge_gap_s * fps))
        self._pad_to = int(round(c.pad_to_s * fps))
        self.reset()

    def reset(self) -> None:
        self._history: deque[float] = deque(maxlen=self._band_max)  # intensity before the run
        self._run_a: list[float] = []
        self._run_p: list[tuple[float, float]] = []
        self._run_start = -1
        self._last_frame = -1
        self._too_long = False
        # frames below close_threshold after a run, held while a dip may still be bridged
        self._gap_a: list[float] = []
        self._gap_p: list[tuple[float, float]] = []

    @property
    def is_open(self) -> bool:
        """True while a run is open (or a dip after it may still be bridged)."""
        return bool(self._run_a)

    # -- verbs -------------------------------------------------------------------------------
    def push(self, frame: int, intensity: float, apex_scores, valid: bool = True) -> list[Instance]:
        """Feed frame ``frame`` (strictly increasing). Returns instances final at this frame."""
        if frame <= self._last_frame:
            raise InputError(f"frames must increase: got {frame} after {self._last_frame}")
        out: list[Instance] = []
        if self._run_a and frame != self._last_frame + 1:  # a gap in frame numbers ends a run
            out += self._close(self._last_frame + 1, None)
        self._last_frame = frame
        a = float(intensity) if valid else 0.0
        p = (self._temper(float(apex_scores[0]), 0), self._temper(float(apex_scores[1]), 1))
        if a > self.cfg.close_threshold and valid:
            if not self._run_a:
                self._run_start = frame
            elif self._gap_a:  # the dip was short: it belongs to the run
                self._run_a += self._gap_a
                self._run_p += self._gap_p
                self._gap_a, self._gap_p = [], []
            self._run_a.append(a)
            self._run_p.append(p)
            if len(self._run_a) > self._macro_max:
                self._too_long = True
                # keep memory bounded: the run will be discarded when it closes
                self._run_a = self._run_a[-1:]
                self._run_p = self._run_p[-1:]
            return out
        if self._run_a and valid and len(self._gap_a) < self._gap_max:
            self._gap_a.append(a)  # maybe a dip: decide when it ends or grows too long
            self._gap_p.append(p)
            return out
        if self._run_a:
            out += self._close(frame, p)
        self._history.append(a)
        return out

    def flush(self) -> list[Instance]:
        """Close the open run (end of stream or track lost). The detector stays usable."""
        out = self._close(self._last_frame + 1, None) if self._run_a else []
        return out

    # -- internals ---------------------------------------------------------------------------
    def _temper(self, p: float, c: int) -> float:
        return temper(p, self.cfg.apex_temperature[c])

    def _close(self, close_frame: int, close_p: tuple[float, float] | None) -> list[Instance]:
        run_a, run_p, start, too_long = self._run_a, self._run_p, self._run_start, self._too_long
        gap_a, gap_p = self._gap_a, self._gap_p
        self._run_a, self._run_p, self._too_long = [], [], False
        self._gap_a, self._gap_p = [], []
        if gap_p and close_p is not None:
            close_p = gap_p[0]  # the run ended where the dip began
        band_len = max(1, int(round(self.cfg.band_ratio * len(run_a))))
        before = list(self._history)[-band_len:]
        self._history.extend(run_a)
        self._history.extend(gap_a)
        n = len(run_a)
        if too_long or n < self._min_len or max(run_a) <= self.cfg.open_threshold:
            return []
        arr = np.asarray(run_a)
        k = int(np.argmax(arr))
        if self.cfg.classify_at == "close" and close_p is not None:
            pm, pu = close_p
        else:
            pm, pu = run_p[k]
        w, v = self.cfg.instance_classifier, self.cfg.instance_verifier
        brief = n <= self._micro_max
        f = instance_features(arr, np.asarray(run_p, dtype=np.float64), pm, pu, self.fps) \
            if brief and (w or v) else None
        if v and f is not None and _logistic(v, f) < self.cfg.verify_threshold:
            return []
        if w and f is not None:
            q = _logistic(w, f)
            kind, prob = (MICRO, q) if q >= self.cfg.instance_threshold else (MACRO, 1.0 - q)
        elif n <= self._micro_max and pu >= self.cfg.micro_prob_threshold and (
            pu > pm or not self.cfg.micro_over_macro
        ):
            kind, prob = MICRO, pu
        else:
            kind, prob = MACRO, pm
        outer = float(np.mean(before)) if before else 0.0
        score = float(arr.mean()) - outer + 0.2 * prob
        if score < self.cfg.min_score:
            return []
        raw = Instance(
            onset=start,
            apex=start + k,
            offset=start + n - 1,
            kind=kind,
            score=score,
            class_prob=float(prob),
            macro_prob=float(pm),
            micro_prob=float(pu),
            closed_frame=close_frame,
        )
        return [reshape(raw, self._pad_to, self.cfg.offset_extend)]


def _logistic(w: tuple[float, ...], f: np.ndarray) -> float:
    z = float(np.dot(w[:-1], f)) + w[-1]
    return 1.0 / (1.0 + math.exp(-min(max(z, -60.0), 60.0)))


def temper(p: float, t: float) -> float:
    """Temperature-scaled probability: sigmoid(logit(p) / t)."""
    if t == 1.0:
        return p
    p = min(max(p, 1e-7), 1 - 1e-7)
    return 1.0 / (1.0 + math.exp(-math.log(p / (1 - p)) / t))


def instance_features(run_intensity: np.ndarray, run_apex: np.ndarray, p_macro: float,
                      p_micro: float, fps: float) -> np.ndarray:
    """The :data:`INSTANCE_FEATURES` of one run: its intensities (n,), its tempered apex
    sigmoids (n, 2) and the two sigmoids the detector classifies from (apex or closing frame)."""
    a = np.asarray(run_intensity, dtype=np.float64)
    p = np.asarray(run_apex, dtype=np.float64).reshape(-1, 2)
    return np.array([p_micro, p_macro, a.shape[0] / fps, a.mean(), p[:, 1].max(), p[:, 1].mean(),
                     p[:, 0].mean()])


def reshape(inst: Instance, pad_to_frames: int, offset_extend: float) -> Instance:
    """Widen a run shorter than ``pad_to_frames`` around its apex, then move a macro offset
    ``offset_extend`` x the run length later. ``inst`` is the raw run (onset..offset); the
    detector applies this to every instance, and the operating-point search applies it to
    raw instances to try many settings from one detector pass."""
    n = inst.length
    onset, offset = inst.onset, inst.offset
    if n < pad_to_frames:  # widen around the apex
        onset = max(0, inst.apex - (pad_to_frames - 1) // 2)
        offset = onset + pad_to_frames - 1
    if inst.kind == MACRO and offset_extend > 0:
        offset += int(round(offset_extend * n))
    if (onset, offset) == (inst.onset, inst.offset):
        return inst
    return dataclasses.replace(inst, onset=onset, offset=offset)


def detect(
    intensity: np.ndarray,
    apex: np.ndarray,
    valid: np.ndarray | None = None,
    cfg: DetectorConfig | None = None,
    fps: float = 30.0,
) -> list[Instance]:
    """Batch path: intensity (T,), apex (T, 2), valid (T,) bool -> instances, same as streaming."""
    intensity = np.asarray(intensity, dtype=np.float64)
    apex = np.asarray(apex, dtype=np.float64)
    t = intensity.shape[0]
    if intensity.ndim != 1 or apex.shape != (t, 2):
        raise InputError(f"detect: want intensity (T,) and apex (T, 2), got {intensity.shape} and {apex.shape}")
    valid = np.ones(t, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    det = PeakDetector(cfg, fps)
    out: list[Instance] = []
    for i in range(t):
        out += det.push(i, intensity[i], apex[i], bool(valid[i]))
    out += det.flush()
    return out
