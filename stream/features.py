"""Per-frame face features from MediaPipe landmarks: the one place that defines the vector.

Input per frame: 478 MediaPipe face-mesh landmarks (float, pixels: x, y, z on the x scale), or
None / NaN when no face was found. Output per frame: a float32 vector of F = 67 features and a
``valid`` flag. Everything is causal: the features of frame t use frames <= t only.

Pipeline per frame
------------------
1. **Align** (``stream.align``): a 3-D similarity fit of the stable points (``regions.STABLE``)
   onto the track's reference shape, made from the first valid frame of the track (centred on the
   eyes, eye line along +x, inter-ocular distance 1). This removes head translation, roll, yaw,
   pitch and distance to the camera.
2. **Regions**: the centroid of each expression region (``regions.REGIONS``) in aligned
   coordinates, x and y only (MediaPipe's z is too noisy to help). 17 regions -> a 34-d shape
   vector ``p_t``.
   Optional (``FeatureConfig.despike_iod``, off by default): a causal glitch filter holds a
   region centroid that jumps implausibly far in one frame for up to 3 frames.
3. **Neutral baseline** (``calibration.neutral.NeutralBaseline``): a per-track robust estimate of
   the resting shape, frozen while the face is expressive. During the first second of valid
   frames (warm-up) it is the running median of the frames so far, so an expression already on
   the face when the track starts reads as neutral until the baseline relocks (see
   ``NeutralConfig``).
4. **Features**: displacement from neutral, plus motion over three time scales.

Feature vector (order and units)
--------------------------------
All lengths are fractions of the inter-ocular distance (IOD; distance between the two eye centres
of the track's reference frame). +x is towards the subject's left (image right), +y is down, so a
brow raise gives a negative ``dy``. Regions ending in ``_r`` / ``_l`` are the subject's right /
left. Lags k are in frames at 30 fps and are scaled to the stream's fps
(``k_eff = max(1, floor(k * fps / 30 + 0.5))``: 2, 5, 12 at 30 fps; 4, 10, 24 at 60 fps).

Index ranges (default config, F = 67):

* **0-33, displacement**: ``<region>.dx``, ``<region>.dy`` for the 17 regions of
  ``REGION_NAMES`` in order (brow_inner_r, brow_inner_l, brow_outer_r, brow_outer_l,
  upper_lid_r, upper_lid_l, lower_lid_r, lower_lid_l, nose_wing_r, nose_wing_l, cheek_r,
  cheek_l, mouth_corner_r, mouth_corner_l, upper_lip, lower_lip, chin): the region centroid
  minus its neutral baseline, in IOD.
* **34-63, motion**: ``<group>.diff<k>`` for k in (2, 5, 12) (outer loop) and the 10 groups of
  ``GROUP_NAMES`` (inner loop: brow_inner, brow_outer, upper_lid, lower_lid, nose_wing, cheek,
  mouth_corner, upper_lip, lower_lip, chin): the mean over the group's regions of the distance
  (>= 0, IOD) each region centroid moved between frame t-k and frame t, in aligned coordinates.
  0 when frame t-k had no face or precedes the track.
* **64-66, head motion**: ``head.rot<k>`` for k in (2, 5, 12): the angle (radians, >= 0) of the
  head rotation between frame t-k and frame t; 0 under the same condition.

Invalid frames (no face, NaN landmarks, degenerate fit) give a zero vector and valid=False; the
baseline and reference are kept across such gaps, and the motion features come back k frames
after the face does. Call ``reset()`` when the track changes (a different face).

Streaming and batch share one code path: ``FeatureExtractor.push`` (one frame),
``FeatureExtractor.push_chunk`` (any number of frames) and ``extract_features`` (a whole video)
give the same numbers (tests/test_features_agreement.py). Checkpoints store ``feature_spec()``
and loaders call ``check_feature_spec``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from calibration.neutral import NeutralBaseline, NeutralConfig
from pfes.errors import InputError, ModelError
from stream.align import fit_similarity, make_reference
from stream.regions import (
    GROUP_NAMES,
    N_LANDMARKS,
    REGION_GROUPS,
    REGION_NAMES,
    REGIONS,
    STABLE,
    region_matrix,
)

__all__ = [
    "FEATURE_VERSION",
    "REFERENCE_FPS",
    "STABLE_SETS",
    "FEATURE_NAMES",
    "FeatureConfig",
    "FeatureExtractor",
    "extract_features",
    "feature_names",
    "feature_spec",
    "check_feature_spec",
    "config_from_spec",
]

FEATURE_VERSION = "pfes.features/1"
REFERENCE_FPS = 30.0

# Point sets for the head-motion fit (FeatureConfig.stable_set).
STABLE_SETS: dict[str, tuple[int, ...]] = {
    "default": tuple(STABLE),
    "core": (168, 6, 197, 195, 5, 133, 362),  # nose bridge and dorsum, inner eye corners
}


@dataclass(frozen=True)
class FeatureConfig:
    """Feature settings. lags_frames_at_30fps: motion time scales in frames at 30 fps.

    despike_iod: 0 (default) = off. Otherwise a causal glitch filter on the aligned region
    centroids, before the baseline and the motion features: a region that jumps more than
    this many IOD from its previous position in one frame (at 30 fps; the threshold grows as
    30 / fps below 30 fps) keeps its previous position for up to ``despike_hold_at_30fps``
    frames; if it is still away after that, the new position is taken (a real fast movement
    arrives that many frames late, a 1-3 frame tracker glitch never arrives). Expression and
    blink motion of the synthetic benchmark stays under 0.07 IOD per frame (99.9th percentile,
    development set), torn-region glitches reach 0.3.

    stable_set: which points the head-motion fit uses (``STABLE_SETS``). "default" is
    ``regions.STABLE`` (nose, eye corners, upper forehead, face contour). "core" keeps the
    nose bridge and the inner eye corners only: on real pixels MediaPipe drags the forehead
    and the face contour down by about 0.04 IOD when the eyes close, which the default fit
    turns into a shift of every region (benchmarks/RESULTS.md, real-pixel benchmark).
    """

    lags_frames_at_30fps: tuple[int, ...] = (2, 5, 12)
    neutral: NeutralConfig = field(default_factory=NeutralConfig)
    despike_iod: float = 0.0
    despike_hold_at_30fps: int = 3
    stable_set: str = "default"

    def __post_init__(self) -> None:
        if self.stable_set not in STABLE_SETS:
            raise ValueError(f"FeatureConfig.stable_set must be one of {sorted(STABLE_SETS)}")
        lags = tuple(int(k) for k in self.lags_frames_at_30fps)
        if not lags or min(lags) < 1:
            raise ValueError("FeatureConfig.lags_frames_at_30fps needs positive lags")
        object.__setattr__(self, "lags_frames_at_30fps", lags)
        if not (math.isfinite(self.despike_iod) and self.despike_iod >= 0):
            raise ValueError("FeatureConfig.despike_iod must be >= 0")
        if int(self.despike_hold_at_30fps) < 1:
            raise ValueError("FeatureConfig.despike_hold_at_30fps must be >= 1")


def feature_names(config: FeatureConfig | None = None) -> tuple[str, ...]:
    """Names of the F features for a config, in vector order (see the module docstring)."""
    cfg = config or FeatureConfig()
    names = [f"{r}.{a}" for r in REGION_NAMES for a in ("dx", "dy")]
    names += [f"{g}.diff{k}" for k in cfg.lags_frames_at_30fps for g in GROUP_NAMES]
    names += [f"head.rot{k}" for k in cfg.lags_frames_at_30fps]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = feature_names()


def feature_spec(config: FeatureConfig | None = None) -> dict[str, Any]:
    """JSON-able description of the features; checkpoints store it next to the weights."""
    cfg = config or FeatureConfig()
    spec: dict[str, Any] = {
        "version": FEATURE_VERSION,
        "n_features": len(feature_names(cfg)),
        "names": list(feature_names(cfg)),
        "reference_fps": REFERENCE_FPS,
        "lags_frames_at_30fps": list(cfg.lags_frames_at_30fps),
        "units": "fractions of the inter-ocular distance; head.rot* in radians",
        "landmarks": "mediapipe-face-mesh-478 (refine_landmarks=True), pixels",
        "neutral": asdict(cfg.neutral),
    }
    if cfg.despike_iod > 0:  # absent when off, so specs written before the filter still match
        spec["despike"] = {"iod": cfg.despike_iod, "hold_at_30fps": cfg.despike_hold_at_30fps}
    if cfg.stable_set != "default":  # likewise
        spec["stable_set"] = {"name": cfg.stable_set, "points": list(STABLE_SETS[cfg.stable_set])}
    return spec


def config_from_spec(spec: dict[str, Any]) -> FeatureConfig:
    """Rebuild the FeatureConfig a spec was made with (after check_feature_spec passes)."""
    try:
        neutral = NeutralConfig(**spec.get("neutral", {}))
        despike = spec.get("despike") or {}
        stable = (spec.get("stable_set") or {}).get("name", "default")
        return FeatureConfig(tuple(spec["lags_frames_at_30fps"]), neutral,
                             float(despike.get("iod", 0.0)), int(despike.get("hold_at_30fps", 3)),
                             stable)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"checkpoint feature spec is malformed: {e}") from e


def check_feature_spec(spec: Any, config: FeatureConfig | None = None) -> None:
    """Raise ModelError (one line) unless ``spec`` matches this code's features for ``config``.

    config None means the config the spec itself records (so non-default neutral settings pass).
    """
    if not isinstance(spec, dict):
        raise ModelError("checkpoint has no feature spec (expected a dict from feature_spec())")
    if spec.get("version") != FEATURE_VERSION:
        raise ModelError(
            f"checkpoint features are {spec.get('version')!r}, this pfes computes "
            f"{FEATURE_VERSION!r}: re-train the model or use the pfes version it was made with"
        )
    expected = feature_spec(config if config is not None else config_from_spec(spec))
    for key, want in expected.items():
        if spec.get(key) != want:
            raise ModelError(
                f"checkpoint feature spec differs in {key!r} ({_short(spec.get(key))} vs "
                f"{_short(want)} here): re-train the model or use matching feature settings"
            )


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


# Gathered point layout: stable points first, then every region point once.
_REGION_POINTS = tuple(dict.fromkeys(p for r in REGION_NAMES for p in REGIONS[r]))


def _group_matrix() -> np.ndarray:
    m = np.zeros((len(REGION_NAMES), len(GROUP_NAMES)))
    for g, name in enumerate(GROUP_NAMES):
        for r in REGION_GROUPS[name]:
            m[REGION_NAMES.index(r), g] = 1.0 / len(REGION_GROUPS[name])
    return m


_REGION_M = region_matrix(_REGION_POINTS)  # (R, Q): region centroids from gathered region points
_GROUP_M = _group_matrix()  # (R, G): group means of per-region values
_N_REGIONS = len(REGION_NAMES)
_N_DISP = 2 * _N_REGIONS
_EYE3 = np.eye(3)
_INV_2SQRT2 = 1.0 / (2.0 * math.sqrt(2.0))


class FeatureExtractor:
    """Streaming per-track feature extractor (one instance per face track).

    fps: the stream's frame rate (scales the motion lags and the neutral-baseline times).
    push(landmarks) returns the final features of that frame at once; nothing is pending, so
    there is no flush(). reset() starts a new track.
    """

    def __init__(self, fps: float, config: FeatureConfig | None = None) -> None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        self.config = config or FeatureConfig()
        self.names = feature_names(self.config)
        self.n_features = len(self.names)
        # round half up (not Python's half-to-even) so lags are predictable across fps
        self.lags = tuple(
            max(1, math.floor(k * self.fps / REFERENCE_FPS + 0.5))
            for k in self.config.lags_frames_at_30fps
        )
        self._despike = self.config.despike_iod * max(1.0, REFERENCE_FPS / self.fps)
        self._despike_hold = max(
            1, math.floor(self.config.despike_hold_at_30fps * self.fps / REFERENCE_FPS + 0.5))
        self._stable = STABLE_SETS[self.config.stable_set]
        self._n_stable = len(self._stable)
        self._used = np.array(self._stable + _REGION_POINTS, dtype=np.intp)
        self._hist_len = max(self.lags)
        self._lag_back = self._hist_len - np.array(self.lags, dtype=np.intp)  # (L,)
        self._baseline = NeutralBaseline(_N_DISP, self.fps, self.config.neutral)
        self._nan_frame = np.full((1, N_LANDMARKS, 3), np.nan, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Start a new track: forget the reference shape, the baseline and the motion history."""
        self._reference: np.ndarray | None = None
        self._baseline.reset()
        h = self._hist_len
        self._hist_pos = np.zeros((h, _N_REGIONS, 2))
        self._hist_rot = np.tile(np.eye(3), (h, 1, 1))
        self._hist_ok = np.zeros(h, dtype=bool)
        self._ds_last: np.ndarray | None = None  # despike: last accepted region positions
        self._ds_held = np.zeros(_N_REGIONS, dtype=np.intp)  # frames each region has been held

    def _despike_positions(self, pos: np.ndarray, ok: np.ndarray) -> None:
        """The glitch filter of FeatureConfig.despike_iod, in place on pos (T, R, 2)."""
        last, held = self._ds_last, self._ds_held
        for t in np.flatnonzero(ok):
            p = pos[t]
            if last is None:
                last = p.copy()
                continue
            jump = np.sqrt(np.sum((p - last) ** 2, axis=1))
            hold = (jump > self._despike) & (held < self._despike_hold)
            held = np.where(hold, held + 1, 0)
            p[hold] = last[hold]
            last = p.copy()
        self._ds_last, self._ds_held = last, held

    @property
    def reference(self) -> np.ndarray | None:
        """(len(STABLE), 3) reference shape of the track, None before its first valid frame."""
        return None if self._reference is None else self._reference.copy()

    def push(self, landmarks: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """One frame: landmarks (478, 3) float pixels, or None for no face.

        Returns (features (F,) float32, valid). Invalid frames give zeros and False.
        """
        if landmarks is None:
            feats, ok = self._process(self._nan_frame, np.zeros(1, dtype=bool))
        else:
            lm = np.asarray(landmarks)
            if lm.shape != (N_LANDMARKS, 3):
                raise InputError(f"landmarks must have shape (478, 3), got {lm.shape}")
            feats, ok = self._process(lm[None], np.ones(1, dtype=bool))
        return feats[0], bool(ok[0])

    def push_chunk(
        self, landmarks: np.ndarray, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Several consecutive frames: landmarks (T, 478, 3) float pixels, valid (T,) bool.

        Returns (features (T, F) float32, valid (T,) bool); identical to T calls of push().
        """
        lm = np.asarray(landmarks)
        if lm.ndim != 3 or lm.shape[1:] != (N_LANDMARKS, 3):
            raise InputError(f"landmarks must have shape (T, 478, 3), got {lm.shape}")
        v = np.ones(lm.shape[0], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        if v.shape != (lm.shape[0],):
            raise InputError(f"valid must have shape ({lm.shape[0]},), got {v.shape}")
        return self._process(lm, v)

    def _set_reference(self, lm: np.ndarray, ok: np.ndarray) -> None:
        for i in np.flatnonzero(ok):
            try:
                self._reference = make_reference(lm[i], self._stable)
                return
            except ValueError:  # degenerate face (eye centres coincide): not a usable frame
                ok[i] = False

    def _process(self, lm: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_t = lm.shape[0]
        pts = lm[:, self._used].astype(np.float64)
        ok = valid & np.isfinite(pts).all(axis=(1, 2))
        if self._reference is None:
            self._set_reference(lm, ok)
        pos = np.zeros((n_t, _N_REGIONS, 2))
        rot = np.broadcast_to(_EYE3, (n_t, 3, 3)).copy()
        idx = np.flatnonzero(ok)
        if idx.size:
            sel = pts[idx] if idx.size < n_t else pts
            ref = self._reference
            if ref is None:  # _set_reference always sets it when a frame is valid
                raise RuntimeError("feature reference missing")
            sim = fit_similarity(sel[:, : self._n_stable], ref, residual=False)
            # Region centroids first, then the transform: it is affine, so this equals the
            # centroid of the transformed points and costs 17 points instead of 120.
            cen = np.matmul(_REGION_M, sel[:, self._n_stable :])  # (n, R, 3)
            xy = np.matmul(cen, np.swapaxes(sim.rotation[:, :2], 1, 2))  # (n, R, 2)
            xy *= sim.scale[:, None, None]
            xy += sim.translation[:, None, :2]
            pos[idx] = xy
            rot[idx] = sim.rotation
            ok[idx] = sim.ok
        if self._despike > 0:
            self._despike_positions(pos, ok)
        feats = np.zeros((n_t, self.n_features), dtype=np.float64)
        flat = pos.reshape(n_t, _N_DISP)
        push = self._baseline.push
        for t in np.flatnonzero(ok):
            feats[t, :_N_DISP] = flat[t] - push(flat[t])
        # Motion over every lag at once, against a history that spans chunk boundaries.
        h = self._hist_len
        all_pos = np.concatenate([self._hist_pos, pos])
        all_rot = np.concatenate([self._hist_rot, rot])
        all_ok = np.concatenate([self._hist_ok, ok])
        prev = self._lag_back[:, None] + np.arange(n_t)  # (L, T) rows of the look-back frames
        both = ok & all_ok[prev]  # (L, T)
        dist = np.sqrt(np.sum((pos - all_pos[prev]) ** 2, axis=3))  # (L, T, R)
        moved = np.matmul(dist, _GROUP_M) * both[:, :, None]  # (L, T, G)
        n_l = len(self.lags)
        n_g = _GROUP_M.shape[1]
        feats[:, _N_DISP : _N_DISP + n_l * n_g] = moved.transpose(1, 0, 2).reshape(n_t, n_l * n_g)
        dr = np.sqrt(np.sum((rot - all_rot[prev]) ** 2, axis=(2, 3)))  # (L, T), Frobenius
        # ||R1 - R2||_F = 2 sqrt(2) sin(angle / 2): stable for small angles, unlike arccos
        ang = 2.0 * np.arcsin(np.minimum(dr * _INV_2SQRT2, 1.0)) * both
        feats[:, _N_DISP + n_l * n_g :] = ang.T
        self._hist_pos = all_pos[-h:]
        self._hist_rot = all_rot[-h:]
        self._hist_ok = all_ok[-h:]
        feats[~ok] = 0.0
        return feats.astype(np.float32), ok


def extract_features(
    landmarks: np.ndarray, valid: np.ndarray, fps: float, config: FeatureConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Batch path for one track: landmarks (T, 478, 3) float pixels, valid (T,) bool.

    Returns (features (T, F) float32, valid (T,) bool), equal to streaming the frames one by one
    through a fresh FeatureExtractor(fps, config).
    """
    return FeatureExtractor(fps, config).push_chunk(landmarks, valid)
