"""FACS-driven synthetic spotting benchmark: landmark videos with exact expression labels.

A video is a MediaPipe-format landmark sequence (T, 478, 3) in pixels of a virtual camera: a
subject's neutral mesh (``synth_face``), deformed by action-unit fields (``synth_aus``) that
follow labelled macro/micro expression time courses and unlabelled distractors
(``synth_distractors``: blinks, talking, fidgets, gaze shifts, resting-face drift), scaled
towards what MediaPipe reports for such motion (``TRACKER_GAIN``), posed by 3-D head motion
with a weak-perspective camera, then corrupted like a real tracker (white and temporally
correlated jitter, short glitches, frames with no face).

Public entry points:
    generate_video(seed, config) -> SynthVideo   (in memory)
    generate_dataset(out_dir, subjects, videos_per_subject, seed) -> summary dict
    dataset_videos(subjects, videos_per_subject, seed, config) -> SynthVideo, ... (in memory,
                                                 the videos generate_dataset writes)
    write_video_npz(path, video)                 (the landmark file of design.md)
Same seed, same config => byte-identical files.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pfes.errors import InputError
from stream.regions import REGIONS
from training.synth_aus import AU_NAMES, TRACKER_GAIN, au_basis
from training.synth_config import SynthConfig
from training.synth_distractors import Distractors, add_distractors, place_span, shape_noise
from training.synth_face import (
    IDX,
    N_LANDMARKS,
    FaceIdentity,
    project,
    rotation_matrices,
    sample_identity,
    unproject,
)
from training.synth_timeline import Instance, free_spans, head_pose, place_instances

__all__ = [
    "SynthConfig",
    "SynthVideo",
    "Instance",
    "CHANNELS",
    "generate_video",
    "generate_dataset",
    "dataset_videos",
    "write_video_npz",
    "unpose",
    "annotation_rows",
    "ANNOTATION_COLUMNS",
]

CHANNELS: tuple[str, ...] = tuple(f"{au}_{s}" for au in AU_NAMES + ("gaze_x", "gaze_y")
                                  for s in ("r", "l"))
_CH = {c: i for i, c in enumerate(CHANNELS)}
ANNOTATION_COLUMNS = ("subject", "video", "onset", "apex", "offset", "type", "point")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class SynthVideo:
    """One generated video.

    landmarks: (T, 478, 3) float32 pixels (NaN where not valid); valid: (T,) bool;
    fps: frames per second; image_size: (W, H) pixels; instances: labelled expressions;
    blinks, talks, fidgets, glitches, dropouts: unlabelled events, inclusive (start, end) frames;
    pose: (T, 6) yaw, pitch, roll (deg), shift x, shift y (face widths), log-scale;
    scale_px: (T,) pixels per IOD unit and centre_px: (T, 2) head-pivot position, the camera
    that ``unpose`` inverts;
    channels: (T, len(CHANNELS)) AU activations (landmark motion = activation x field x the
    video's tracker gain, see ``SynthConfig.tracker_gain_mix``); clean: (T, 478, 3) float32 unposed canonical
    shapes (IOD units, no jitter) when generated with ``keep_clean=True``, else None.
    """

    name: str
    subject: str
    landmarks: np.ndarray
    valid: np.ndarray
    fps: float
    image_size: tuple[int, int]
    instances: list[Instance]
    blinks: list[tuple[int, int]]
    talks: list[tuple[int, int]]
    fidgets: list[tuple[int, int]]
    glitches: list[tuple[int, int]]
    dropouts: list[tuple[int, int]]
    pose: np.ndarray
    scale_px: np.ndarray
    centre_px: np.ndarray
    channels: np.ndarray
    identity: FaceIdentity
    clean: np.ndarray | None = None


@lru_cache(maxsize=1)
def _basis_matrix() -> np.ndarray:
    b = au_basis()
    return np.stack([b[c].reshape(-1) for c in CHANNELS]).astype(np.float32)  # (K, 478*3)


@lru_cache(maxsize=1)
def blink_drag() -> np.ndarray:
    """(478, 3) float32 IOD per unit eye closure: how MediaPipe drags the face when the eyes
    close (``scripts/measure_blink_drag.py``); used when ``SynthConfig.tracker_blink_drag``."""
    return np.load(Path(__file__).resolve().parent / "assets" / "blink_drag.npy").astype(
        np.float32)


_BROW_REGIONS = tuple(list(v) for k, v in REGIONS.items() if k.startswith("brow_"))


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _layout(rng: np.random.Generator, cfg: SynthConfig) -> tuple[tuple[int, int], float]:
    """Frame size (W, H) and a face-width range that fits it."""
    sizes = cfg.frame_sizes_px
    w, h = (int(v) for v in sizes[int(rng.integers(len(sizes)))])
    hi = min(cfg.face_width_px[1], 0.75 * h / 1.19, 0.6 * w)
    lo = min(cfg.face_width_px[0], hi)
    return (w, h), float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _jitter(rng: np.random.Generator, shape: tuple[int, ...], tau: float,
            corr_frac: float) -> np.ndarray:
    """Unit-variance float32 tracker noise along axis 0: white plus AR(1) (time constant tau).

    One Gaussian draw e feeds both parts, n = a e + b x with x_t = rho x_{t-1} + c e_t,
    normalised so that Var(n) = 1; ``corr_frac`` is b^2 / (a^2 + b^2).
    """
    rho = np.float32(np.exp(-1.0 / tau))
    c = np.float32(np.sqrt(1 - rho**2))
    e = rng.standard_normal(size=shape, dtype=np.float32)
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, shape[0]):
        np.multiply(x[t - 1], rho, out=x[t])
        x[t] += c * e[t]
    a, b = np.sqrt(1 - corr_frac), np.sqrt(corr_frac)
    x *= np.float32(b)
    x += np.float32(a) * e
    x /= np.float32(np.sqrt(a * a + b * b + 2 * a * b * c))
    return x


def generate_video(seed: Any = 0, config: SynthConfig | None = None, *,
                   length_s: float | None = None, identity: FaceIdentity | None = None,
                   frame_size: tuple[int, int] | None = None, name: str = "video",
                   subject: str = "s01", keep_clean: bool = False) -> SynthVideo:
    """Generate one landmark video in memory.

    seed: int, SeedSequence or Generator; length_s: video length (default: sampled from
    ``config.video_length_s``); identity/frame_size: fixed subject and camera (default:
    sampled). Returns a :class:`SynthVideo`; ``keep_clean`` adds the unposed noise-free shapes.
    """
    cfg = config or SynthConfig()
    rng = _rng(seed)
    fps = float(cfg.fps)
    if length_s is None:
        length_s = float(rng.uniform(*cfg.video_length_s))
    n = int(round(length_s * fps))
    if n < 10:
        raise InputError(f"video too short: {length_s} s at {fps} fps")
    if frame_size is None or identity is None:
        size, width = _layout(rng, cfg)
        frame_size = frame_size or size
        if identity is None:
            identity = sample_identity(rng, (width, width), relax_mouth=cfg.relax_mouth)
    W, H = (int(v) for v in frame_size)

    # labelled instances
    instances = place_instances(rng, n, cfg)
    chan = np.zeros((n, len(CHANNELS)))
    for ins in instances:
        prof = ins.profile * ins.peak * identity.au_gain
        for au in ins.aus:
            g = rng.uniform(0.75, 1.1) if len(ins.aus) > 1 else 1.0
            sides = [au[-1]] if au.endswith(("_l", "_r")) else ["r", "l"]
            base = au[:-2] if au.endswith(("_l", "_r")) else au
            for side in sides:
                asym = rng.uniform(0.85, 1.15) if len(sides) == 2 else 1.0
                chan[ins.onset:ins.offset + 1, _CH[f"{base}_{side}"]] += g * asym * prof

    pose = head_pose(rng, n, cfg)
    busy = [(i.onset, i.offset) for i in instances]
    minutes = n / fps / 60.0
    dis = Distractors()
    if cfg.distractors:
        dis = add_distractors(rng, chan, pose, busy, cfg, _CH)
        for ins in instances:  # people often nod or tilt a little while expressing
            if ins.kind == "macro" and rng.random() < 0.3:
                sl = slice(ins.onset, ins.offset + 1)
                pose[sl, 1] += rng.uniform(-4, 4) * ins.profile
                pose[sl, 2] += rng.uniform(-2, 2) * ins.profile

    # shapes (AU motion scaled towards what the tracker reports), pose, camera
    mix = rng.uniform(*cfg.tracker_gain_mix)
    gain = np.array([1.0 - mix * (1.0 - TRACKER_GAIN[c[:-2]]) for c in CHANNELS], np.float32)
    shapes = ((chan.astype(np.float32) * gain) @ _basis_matrix()).reshape(n, N_LANDMARKS, 3)
    if cfg.tracker_blink_drag[1] > 0:  # drawn only when on: default output stays byte-identical
        k = rng.uniform(*cfg.tracker_blink_drag)
        closure = np.clip(0.5 * (chan[:, _CH["AU43_r"]] + chan[:, _CH["AU43_l"]]), 0.0, 1.0)
        shapes += (np.float32(k) * closure.astype(np.float32))[:, None, None] * blink_drag()
    shapes += identity.mesh.astype(np.float32)
    fw = identity.face_width_px * rng.uniform(0.92, 1.08)  # the subject sits nearer or farther
    mesh_width = identity.mesh[IDX["face_side_l"], 0] - identity.mesh[IDX["face_side_r"], 0]
    scale0 = fw / mesh_width
    cx = rng.uniform(0.35, 0.65) * W
    cy = float(np.clip(rng.uniform(0.4, 0.55) * H, 1.2 * scale0, max(1.2 * scale0,
                                                                        H - 1.5 * scale0)))
    clean = shapes.copy() if keep_clean else None
    if cfg.distractors:
        shapes += shape_noise(rng, identity.mesh, pose, rng.uniform(*cfg.shape_noise_iod))
    rot = rotation_matrices(pose[:, 0], pose[:, 1], pose[:, 2])
    scale = scale0 * np.exp(pose[:, 5])
    centre = np.stack([cx + pose[:, 3] * fw, cy + pose[:, 4] * fw], axis=1)
    px = project(shapes, rot, scale, centre)

    glitches: list[tuple[int, int]] = []
    dropouts: list[tuple[int, int]] = []
    valid = np.ones(n, dtype=bool)
    if cfg.distractors:
        sd = rng.uniform(*cfg.jitter_px_at_200px) * fw / 200.0
        tau, cf = cfg.jitter_corr_frames, cfg.jitter_corr_frac
        # most tracker noise is per landmark; a smaller part moves the whole mesh together
        noise = _jitter(rng, px.shape, tau, cf)
        noise *= np.float32(sd * np.sqrt(0.85))
        noise += _jitter(rng, (n, 1, 3), tau, 1.0) * np.float32(sd * np.sqrt(0.15))
        noise[..., 2] *= np.float32(1.5)  # the tracker's depth is noisier than x, y
        px += noise
        if cfg.tracker_brow_jitter_iod[1] > 0:  # drawn only when on (default stays identical)
            k = rng.uniform(*cfg.tracker_brow_jitter_iod)
            for ids in _BROW_REGIONS:
                piece = _jitter(rng, (n, 1, 2), tau, cf) * np.float32(k)
                px[:, ids, :2] += piece * scale[:, None, None].astype(np.float32)
        guard = [(lo - 2, hi + 2) for lo, hi in busy]  # keep labelled instances clean
        for _ in range(int(rng.poisson(rng.uniform(*cfg.glitches_per_min) * minutes))):
            span = place_span(rng, int(rng.integers(1, 4)), free_spans(n, guard + glitches, 1))
            if span is None:
                continue
            s, e = span
            if rng.random() < 0.5:  # the whole mesh lands in the wrong place
                c = np.nanmean(px[s:e + 1], axis=1, keepdims=True)
                k = rng.uniform(0.85, 1.15)
                px[s:e + 1] = (px[s:e + 1] - c) * k + c + rng.normal(0, 0.08 * fw, size=3)
            else:  # one region is torn away
                anchor = int(rng.integers(N_LANDMARKS))
                near = np.linalg.norm(identity.mesh - identity.mesh[anchor], axis=1) < 0.4
                px[s:e + 1, near] += rng.normal(0, 0.06 * fw, size=3)
            glitches.append((s, e))
        for _ in range(int(rng.poisson(rng.uniform(*cfg.dropouts_per_min) * minutes))):
            span = place_span(rng, int(rng.integers(cfg.dropout_frames[0],
                                                   cfg.dropout_frames[1] + 1)),
                          free_spans(n, guard + glitches + dropouts, 1))
            if span is None:
                continue
            valid[span[0]:span[1] + 1] = False
            dropouts.append(span)
        glitches.sort()
        dropouts.sort()
    lm = px.astype(np.float32, copy=False)
    lm[~valid] = np.nan
    return SynthVideo(
        name=name, subject=subject, landmarks=lm, valid=valid, fps=fps, image_size=(W, H),
        instances=instances, blinks=dis.blinks, talks=dis.talks, fidgets=dis.fidgets,
        glitches=glitches, dropouts=dropouts,
        pose=pose, scale_px=scale, centre_px=centre, channels=chan.astype(np.float32),
        identity=identity,
        clean=clean,
    )


def unpose(video: SynthVideo) -> np.ndarray:
    """The video's landmarks with the known head pose removed: (T, 478, 3) float64 canonical
    units (IOD). Tracker noise, glitches and NaN frames stay in."""
    rot = rotation_matrices(video.pose[:, 0], video.pose[:, 1], video.pose[:, 2])
    return unproject(video.landmarks, rot, video.scale_px, video.centre_px)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez`` (stored, loadable by ``np.load``) but with fixed zip timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, val in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(val), allow_pickle=False)
    path.write_bytes(buf.getvalue())


def write_video_npz(path: str | Path, video: SynthVideo) -> None:
    """Write the landmark file of design.md: landmarks, valid, fps, image_size."""
    _write_npz(Path(path), {
        "landmarks": video.landmarks.astype(np.float32),
        "valid": video.valid.astype(bool),
        "fps": np.asarray(video.fps, dtype=np.float64),
        "image_size": np.asarray(video.image_size, dtype=np.int32),
    })


def annotation_rows(video: SynthVideo) -> list[tuple[str, str, int, int, int, str, int]]:
    """Rows of annotations.csv (ANNOTATION_COLUMNS order) for one video."""
    return [(video.subject, video.name, i.onset, i.apex, i.offset, i.kind, i.point)
            for i in video.instances]


def generate_dataset(out_dir: str | Path, subjects: int = 24, videos_per_subject: int = 2,
                     seed: int = 0, fps: float | None = None, config: SynthConfig | None = None,
                     *, overwrite: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write a dataset directory (design.md format) and return a summary.

    out_dir gets ``annotations.csv``, ``landmarks/<video>.npz`` and ``synth_config.json``.
    Subject k (0-based) and its videos depend only on (seed, k, video index), so a dataset with
    more subjects extends a smaller one. ``progress(done, total)`` is called after each video.
    Raises InputError for bad arguments or a non-empty ``out_dir`` without ``overwrite``.
    """
    if not isinstance(subjects, int) or subjects < 1:
        raise InputError(f"subjects must be a positive integer, got {subjects!r}")
    if not isinstance(videos_per_subject, int) or videos_per_subject < 1:
        raise InputError(f"videos_per_subject must be a positive integer, "
                         f"got {videos_per_subject!r}")
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    cfg = config or SynthConfig()
    if fps is not None:
        cfg = replace(cfg, fps=float(fps))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"{out} is not empty (use --force to overwrite)")
        for old in sorted((out / "landmarks").glob("*.npz")):
            old.unlink()
    lm_dir = out / "landmarks"
    lm_dir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple] = []
    total = subjects * videos_per_subject
    n_frames = 0
    done = 0
    for vid in dataset_videos(subjects, videos_per_subject, seed, cfg):
        write_video_npz(lm_dir / f"{vid.name}.npz", vid)
        rows += annotation_rows(vid)
        n_frames += len(vid.valid)
        done += 1
        if progress is not None:
            progress(done, total)
    lines = [",".join(ANNOTATION_COLUMNS)] + [",".join(str(x) for x in r) for r in rows]
    (out / "annotations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = {"generator": "pfes.synth/1", "seed": seed, "subjects": subjects,
            "videos_per_subject": videos_per_subject, "config": cfg.to_dict()}
    (out / "synth_config.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n",
                                           encoding="utf-8")
    return {
        "out_dir": str(out), "subjects": subjects, "videos": total, "frames": n_frames,
        "seconds": n_frames / cfg.fps, "macro": sum(r[5] == "macro" for r in rows),
        "micro": sum(r[5] == "micro" for r in rows), "seed": seed,
    }


def dataset_videos(subjects: int, videos_per_subject: int, seed: int,
                   config: SynthConfig | None = None) -> Iterator[SynthVideo]:
    """The videos of ``generate_dataset(..., subjects, videos_per_subject, seed, config=config)``
    in memory, in the same order, with everything the files leave out (distractor spans, AU
    channels): subject k's identity and camera come from (seed, k), its video v from
    (seed, k, v)."""
    cfg = config or SynthConfig()
    for k in range(subjects):
        subj = f"s{k + 1:02d}"
        srng = np.random.default_rng(np.random.SeedSequence([seed, k, 1]))
        size, width = _layout(srng, cfg)
        ident = sample_identity(srng, (width, width), relax_mouth=cfg.relax_mouth)
        for v in range(videos_per_subject):
            vrng = np.random.default_rng(np.random.SeedSequence([seed, k, 2, v]))
            yield generate_video(vrng, cfg, identity=ident, frame_size=size,
                                 name=f"{subj}_{v + 1:02d}", subject=subj)
