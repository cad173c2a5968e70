"""Expression evidence from MediaPipe's face blendshapes: what the real-face model sees.

The P-FES network scores landmark displacements it learned from synthetic faces. On real
people two things fool it: speech, blinks and gaze move the same landmarks as expressions, and
an expression already on the face when the track starts is learned as the neutral baseline.
The blendshape model (``stream.blendshapes``) was trained on real faces and reads a neutral face
as about 0 for any identity, so it answers both: this module turns its 52 coefficients into a
few **expression groups** that speech and blinks hardly move, measured against a per-track
resting level that can never rise above a small population ceiling (so a held expression is
never absorbed into "neutral"), and fuses that evidence with the network's intensity.

Groups (``GROUPS``; value = mean of the channels, brow raise = max of inner and outer):

========== ============================================ ===============
group      channels                                     words
========== ============================================ ===============
smile      mouthSmileLeft/Right                         smile
brow_lower browDownLeft/Right                           frown
brow_raise browInnerUp, browOuterUpLeft/Right           brow raise
lip_down   mouthFrownLeft/Right                         lip corners down
sneer      noseSneerLeft/Right                          nose wrinkle
========== ============================================ ===============

Left out on purpose: jaw, lip press/pucker/funnel/roll/shrug, upper-lip raise and dimples (they
move with every syllable), eye blink/squint/look (blinks, gaze, and still faces drift 0.2-0.4 on
``eyeSquint``), eye widening and cheek squint (too weak on the development clips to help).

Per track and group, causal: the resting level ``r_t`` is the 20th percentile of the group's
value over the last ``window_s`` of valid frames (0 before any), capped at ``ceiling`` until a
whole window has been seen (so an expression under way when the face appears is found, and a
face whose rest reads as a smile, or a frown, stops being one after ``window_s``); the
evidence is ``e_t = clip(v_t - r_t, 0, 1)`` after a 7-frame running median of ``v`` (a
syllable's mouth shape rarely lasts longer). Fusion with the network's intensity ``a_t``::

    gate_t  = clip((E_t - gate_lo) / (gate_hi - gate_lo), 0, 1)     E_t = max over groups
    fused_t = max(a_t * gate_t, clip(E_t / full_evidence, 0, 1) * evidence_gain)

so the network's peaks count only where the face shows an expression, and a clear expression
(a sustained smile, a held frown) reaches the detector even when the network missed it.
``ExpressionTracker.push`` (one frame) and :func:`expression_evidence` (a whole track) share the
code and agree exactly (tests/test_expression.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.blendshapes import BLENDSHAPE_NAMES

__all__ = [
    "GROUPS",
    "GROUP_NAMES",
    "ExpressionConfig",
    "ExpressionTracker",
    "expression_evidence",
    "fuse_intensity",
    "what_moved",
    "blendshapes_per_frame",
    "FaceFeatureExtractor",
    "RealFaceSpotter",
    "EvidenceDetector",
]

_IDX = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
_EYE_WIDE_GAIN = 4.0  # eyeWide is weak: 0.1 in a posed surprise, ~0.01 in speech

# name -> (channels, how they combine, plain words)
GROUPS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "smile": (("mouthSmileLeft", "mouthSmileRight"), "mean", "smile"),
    "brow_lower": (("browDownLeft", "browDownRight"), "mean", "frown"),
    "surprise": (("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "eyeWideLeft",
                  "eyeWideRight"), "surprise", "surprise"),
    "lip_down": (("mouthFrownLeft", "mouthFrownRight"), "mean", "lip corners down"),
    "sneer": (("noseSneerLeft", "noseSneerRight"), "mean", "nose wrinkle"),
}
GROUP_NAMES: tuple[str, ...] = tuple(GROUPS)
# Channels reported in "what moved": the groups' channels plus the ones that tell a smile
# from a grimace or surprise from a brow flash.
_REPORTED = tuple(
    dict.fromkeys(
        [c for chans, _, _ in GROUPS.values() for c in chans]
        + ["eyeWideLeft", "eyeWideRight", "jawOpen", "mouthUpperUpLeft", "mouthUpperUpRight",
           "mouthPressLeft", "mouthPressRight", "cheekSquintLeft", "cheekSquintRight"]
    )
)


@dataclass(frozen=True)
class ExpressionConfig:
    """Evidence and fusion settings (units: blendshape coefficients in [0, 1], seconds).

    ceiling: highest resting level a track may learn per group (a neutral face reads about 0;
    still faces drift to ~0.2 on brow raise). window_s: how far back the resting level looks.
    gate_lo / gate_hi: evidence below gate_lo silences the network, above gate_hi lets it through.
    full_evidence / evidence_gain: evidence at full_evidence maps to intensity evidence_gain.
    """

    ceiling: tuple[float, ...] = (0.15, 0.15, 0.15, 0.15, 0.15)
    window_s: float = 6.0
    quantile: float = 0.2
    median_frames: int = 7
    gate_lo: float = 0.10
    gate_hi: float = 0.25
    full_evidence: float = 0.5
    evidence_gain: float = 0.9

    def __post_init__(self) -> None:
        if len(self.ceiling) != len(GROUPS):
            raise ValueError(f"ExpressionConfig.ceiling needs {len(GROUPS)} values")
        if not 0 <= self.gate_lo < self.gate_hi <= 1 or self.full_evidence <= 0:
            raise ValueError("ExpressionConfig: need 0 <= gate_lo < gate_hi <= 1, full_evidence > 0")
        if self.window_s <= 0 or not 0 < self.quantile < 1 or self.median_frames < 1:
            raise ValueError("ExpressionConfig: bad window_s, quantile or median_frames")


def _group_matrix() -> np.ndarray:
    """(52, 7) averaging weights: smile, brow_lower, browInnerUp, browOuterUp (mean), eyeWide
    (mean), lip_down, sneer."""
    cols = [("mouthSmileLeft", "mouthSmileRight"), ("browDownLeft", "browDownRight"),
            ("browInnerUp",), ("browOuterUpLeft", "browOuterUpRight"),
            ("eyeWideLeft", "eyeWideRight"), ("mouthFrownLeft", "mouthFrownRight"),
            ("noseSneerLeft", "noseSneerRight")]
    m = np.zeros((len(BLENDSHAPE_NAMES), len(cols)), dtype=np.float32)
    for j, chans in enumerate(cols):
        for c in chans:
            m[_IDX[c], j] = 1.0 / len(chans)
    return m


_GROUP_MATRIX = _group_matrix()


def group_values(bs: np.ndarray) -> np.ndarray:
    """Blendshapes (..., 52) -> group values (..., G) in ``GROUP_NAMES`` order."""
    c = np.asarray(bs, dtype=np.float32) @ _GROUP_MATRIX
    # surprise: brows up (AU1+2) only with the eyes widened (AU5); conversational brow
    # raises while talking are not surprise
    surprise = np.minimum(np.maximum(c[..., 2], c[..., 3]), _EYE_WIDE_GAIN * c[..., 4])
    return np.stack([c[..., 0], c[..., 1], surprise, c[..., 5], c[..., 6]], axis=-1)


def _quantile(x: np.ndarray, q: float) -> np.ndarray:
    """np.quantile(x, q, axis=0) (linear interpolation) by partial sorting."""
    n = len(x)
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    part = np.partition(x, (lo, hi), axis=0)
    return part[lo] + (part[hi] - part[lo]) * np.float32(pos - lo)


class ExpressionTracker:
    """Per-track causal evidence. ``push(bs)`` one frame's (52,) blendshapes (NaN or
    ``valid=False`` for no face) -> (G,) evidence, final at once. ``reset()`` for a new face."""

    def __init__(self, fps: float, config: ExpressionConfig | None = None) -> None:
        self.cfg = config or ExpressionConfig()
        self.fps = float(fps)
        self._ceiling = np.asarray(self.cfg.ceiling, dtype=np.float32)
        self._window = max(1, int(round(self.cfg.window_s * self.fps)))
        g = len(GROUPS)
        self._hist = np.zeros((self._window, g), dtype=np.float32)  # ring of group values
        self._recent = np.zeros((self.cfg.median_frames, g), dtype=np.float32)
        self._idx = np.array([_IDX[c] for chans, _, _ in GROUPS.values() for c in chans])
        self.reset()

    def reset(self) -> None:
        self._n_hist = 0  # valid frames pushed (the ring holds the last min(n, window))
        self._n_recent = 0  # consecutive valid frames (for the running median)

    def push(self, bs: np.ndarray, valid: bool = True) -> np.ndarray:
        b = np.asarray(bs, dtype=np.float32)
        if not valid or b.shape != (len(BLENDSHAPE_NAMES),) or not np.isfinite(b[self._idx]).all():
            self._n_recent = 0
            return np.zeros(len(GROUPS), dtype=np.float32)
        v = group_values(b)
        self._hist[self._n_hist % self._window] = v
        self._n_hist += 1
        self._recent[self._n_recent % len(self._recent)] = v
        self._n_recent += 1
        smooth = np.median(self._recent[: min(self._n_recent, len(self._recent))], axis=0)
        rest = _quantile(self._hist[: min(self._n_hist, self._window)], self.cfg.quantile)
        if self._n_hist < self._window:
            # until a whole window of this face has been seen, a level above the ceiling
            # is an expression, not the face's rest (an expression under way at start-up)
            rest = np.minimum(rest, self._ceiling)
        return np.clip(smooth - rest, 0.0, 1.0).astype(np.float32)


def expression_evidence(
    bs: np.ndarray, valid: np.ndarray, fps: float, config: ExpressionConfig | None = None
) -> np.ndarray:
    """A whole track: (T, 52), (T,) -> (T, G) evidence, equal to pushing frame by frame."""
    tr = ExpressionTracker(fps, config)
    out = np.zeros((len(bs), len(GROUPS)), dtype=np.float32)
    for t in range(len(bs)):
        out[t] = tr.push(bs[t], bool(valid[t]))
    return out


def fuse_intensity(
    intensity: np.ndarray | float, evidence: np.ndarray, config: ExpressionConfig | None = None
) -> np.ndarray:
    """Network intensity (T,) or scalar and evidence (T, G) or (G,) -> fused intensity."""
    cfg = config or ExpressionConfig()
    e = np.asarray(evidence, dtype=np.float32).max(axis=-1)
    gate = np.clip((e - cfg.gate_lo) / (cfg.gate_hi - cfg.gate_lo), 0.0, 1.0)
    direct = np.clip(e / cfg.full_evidence, 0.0, 1.0) * cfg.evidence_gain
    return np.maximum(np.asarray(intensity, dtype=np.float32) * gate, direct).astype(np.float32)


def what_moved(
    bs: np.ndarray, onset: int, apex: int, top: int = 3, min_change: float = 0.1,
    rest_frames: int = 50, rest_ceiling: float = 0.2,
) -> tuple[list[tuple[str, float]], str]:
    """Which blendshapes rose most from rest to apex, and a plain-words summary.

    bs: (T, 52) blendshapes of the track (rows index frames; NaN rows ignored). The rest level
    of each channel is its 10th percentile over the ``rest_frames`` frames up to the onset,
    capped at ``rest_ceiling`` (an expression already under way at the first frame compares
    against a near-neutral face). Returns ([(name, change)], words), e.g.
    ([("mouthSmileRight", 0.62), ("mouthSmileLeft", 0.58)], "smile"); changes are rounded to
    0.001, at least ``min_change``, largest first.
    """
    n = len(bs)
    if n == 0:
        return [], ""
    apex = min(max(apex, 0), n - 1)
    onset = min(max(onset, 0), apex)
    before = bs[max(0, onset - rest_frames) : onset + 1]
    peak = bs[max(onset, apex - 1) : min(n, apex + 2)]
    if not np.isfinite(peak).any():
        return [], ""
    with np.errstate(all="ignore"):
        rest = np.nanpercentile(before, 10, axis=0) if np.isfinite(before).any() else None
        at_apex = np.nanmedian(peak, axis=0)
    rest = np.zeros(bs.shape[1]) if rest is None else np.minimum(np.nan_to_num(rest), rest_ceiling)
    change = np.nan_to_num(at_apex) - rest
    idx = [_IDX[c] for c in _REPORTED]
    order = sorted(range(len(idx)), key=lambda k: -float(change[idx[k]]))
    moved = [(_REPORTED[k], round(float(change[idx[k]]), 3)) for k in order[:top]
             if float(change[idx[k]]) >= min_change]
    g_change = group_values(np.nan_to_num(at_apex)) - group_values(rest)
    words = [GROUPS[GROUP_NAMES[k]][2] for k in np.argsort(-g_change) if g_change[k] >= min_change]
    return moved, ", ".join(words[:2])


@dataclass(frozen=True)
class EvidenceDetector:
    """Operating point of the per-group evidence detectors (macro only: an expression has to
    hold for ``min_duration_s`` to be called from the blendshapes alone)."""

    open_evidence: float = 0.35
    close_evidence: float = 0.15
    min_duration_s: float = 0.5
    merge_gap_s: float = 0.15


class RealFaceSpotter:
    """Per track: the network's detector, gated by expression evidence, beside one evidence
    detector per group. Streaming verbs as :class:`engine.detector.PeakDetector`:
    ``push(frame, intensity, apex, valid, blendshapes)`` -> instances final at this frame,
    ``flush()`` at the end of the track.

    A network instance that closes while a group detector is open, or that overlaps the last
    evidence instance, is dropped (the evidence instance, timed by the blendshapes, stands for
    it). Evidence instances are macro with ``class_prob`` 1 and score = peak evidence.
    """

    def __init__(self, detector_cfg, fps: float, config: ExpressionConfig | None = None,
                 evidence: EvidenceDetector | None = None) -> None:
        from engine.detector import DetectorConfig, PeakDetector

        self.cfg = config or ExpressionConfig()
        ev = evidence or EvidenceDetector()
        self.tracker = ExpressionTracker(fps, self.cfg)
        self.net = PeakDetector(detector_cfg, fps)
        gcfg = DetectorConfig(
            open_threshold=ev.open_evidence, close_threshold=ev.close_evidence,
            min_duration_s=ev.min_duration_s, micro_max_duration_s=ev.min_duration_s,
            macro_max_duration_s=max(60.0, detector_cfg.macro_max_duration_s),
            merge_gap_s=ev.merge_gap_s, band_ratio=detector_cfg.band_ratio,
        )
        self.groups = [PeakDetector(gcfg, fps) for _ in GROUPS]
        self._last_evidence_end = -1
        self._last_evidence_start = -1
        self.evidence = np.zeros(len(GROUPS), dtype=np.float32)

    def push(self, frame: int, intensity: float, apex, valid: bool, bs: np.ndarray) -> list:
        e = self.tracker.push(bs, valid)
        self.evidence = e
        out: list = []
        dummy = np.array([1.0, 0.0])
        for g, det in enumerate(self.groups):
            for inst in det.push(frame, float(e[g]), dummy, valid):
                out.append(self._evidence_instance(inst))
        fused = float(intensity) * float(_gate(e, self.cfg))
        for inst in self.net.push(frame, fused, apex, valid):
            if self._keep(inst):
                out.append(inst)
        return sorted(out, key=lambda i: i.onset)

    def flush(self) -> list:
        out = [self._evidence_instance(i) for det in self.groups for i in det.flush()]
        out += [i for i in self.net.flush() if self._keep(i)]
        return sorted(out, key=lambda i: i.onset)

    def _evidence_instance(self, inst):
        import dataclasses

        self._last_evidence_start = inst.onset
        self._last_evidence_end = max(self._last_evidence_end, inst.offset)
        return dataclasses.replace(inst, kind="macro", class_prob=1.0, macro_prob=1.0, micro_prob=0.0)

    def _keep(self, inst) -> bool:
        if any(det.is_open for det in self.groups):
            return False
        return inst.onset > self._last_evidence_end


def _gate(e: np.ndarray, cfg: ExpressionConfig) -> float:
    top = float(np.max(e)) if e.size else 0.0
    return min(1.0, max(0.0, (top - cfg.gate_lo) / (cfg.gate_hi - cfg.gate_lo)))


class FaceFeatureExtractor:
    """The network's features followed by the 52 blendshapes, from one push per frame.

    ``push(landmarks | None)`` -> ((F + 52,) float32, valid): columns ``[:F]`` are exactly
    what ``inner.push`` returns, ``[F:]`` the blendshapes (NaN without a face). The live
    pipeline splits them again: the engine gets ``[:F]``, the real-face stage ``[F:]``.
    """

    def __init__(self, inner, model) -> None:
        self.inner = inner
        self.model = model
        self.n_features = int(inner.n_features) + len(BLENDSHAPE_NAMES)
        self._nan = np.full(len(BLENDSHAPE_NAMES), np.nan, dtype=np.float32)

    def reset(self) -> None:
        self.inner.reset()

    def push(self, landmarks):
        feat, ok = self.inner.push(landmarks)
        bs = self._nan if landmarks is None else self.model.from_mesh(np.asarray(landmarks))
        return np.concatenate([np.asarray(feat, dtype=np.float32), bs]), ok


def blendshapes_per_frame(model, landmarks: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(T, 478, >=2) landmarks -> (T, 52), one frame at a time as the live path computes them
    (a batched product rounds differently in the last bits); NaN where not valid."""
    lm = np.asarray(landmarks)
    out = np.full((len(lm), len(BLENDSHAPE_NAMES)), np.nan, dtype=np.float32)
    for t in range(len(lm)):
        if valid is None or valid[t]:
            out[t] = model.from_mesh(lm[t])
    return out
