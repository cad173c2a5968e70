"""Real-pixel test clips: a real face photograph warped over time with known expressions.

The face is ``skimage.data.astronaut()`` (public domain). MediaPipe measures its mesh once on
the neutral crop; an expression event moves selected landmarks (mouth corners, brows, eyelids,
lower lip and chin) by a displacement given in inter-ocular distances (IOD, iris centre to iris
centre), spreads it to nearby landmarks with a Gaussian falloff, pins landmarks that must stay
(e.g. the eyes during a brow raise), and interpolates a dense displacement field from all 478
landmark motions plus fixed image-border anchors with a thin-plate spline (own numpy code,
solved once per event). Each frame is rendered with one ``cv2.remap`` of the original photo:

    output x  --head motion S_t^-1-->  y  --expression y - D_t(y)-->  crop  -->  astronaut

with ``D_t = sum_k s_k(t) * U_k`` (``U_k`` the unit field of event k scaled by its intensity,
``s_k`` a raised-cosine rise from onset to apex and fall to offset, 1 at the apex frame) and
``S_t`` a small smooth similarity transform (translation, rotation, scale) about the face centre.

Clips are encoded as H.264 mp4 (libx264, yuv420p) with PyAV. Ground truth is a JSON-able dict::

    {"fps", "frames", "size": [W, H], "iod_px", "seed",
     "events": [{"kind", "type", "region", "onset", "apex", "offset", "intensity"}],
     "head_motion": {"translate_px", "rotate_deg", "scale"}}

Frame indices are 0-based and inclusive, like the dataset annotations. A 3 s clip with two
events renders and encodes in one to two seconds on one CPU core (each event costs one
thin-plate-spline solve, about 0.5 s; each frame about 4 ms to render).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from pfes.errors import DependencyError, InputError
from training.warpclip_regions import EVENT_KINDS, EventKind, landmark_displacements

__all__ = [
    "WarpEvent",
    "HeadMotion",
    "ClipSpec",
    "event_profile",
    "neutral_face",
    "render_frames",
    "true_landmarks",
    "ground_truth",
    "encode_mp4",
    "make_clip",
    "EVENT_KINDS",
]

log = logging.getLogger(__name__)

MICRO_MAX_S = 0.5  # instances shorter than this are micro (method.md)
_FACE_CENTRE = (225.0, 128.0)  # astronaut face centre, source pixels
_CROP_W = 352.0  # source pixels across the output width (face about 165 px wide at 640)
_GRID_STEP = 4  # the displacement field is interpolated on this pixel grid, then upsampled


@dataclass(frozen=True)
class WarpEvent:
    """One expression instance.

    kind: one of EVENT_KINDS (smile, brow_raise, brow_lower, eye_close, jaw_drop, surprise).
    onset, apex, offset: 0-based inclusive frame indices, onset <= apex <= offset.
    intensity: scale of the kind's full displacement (macro ~1, micro 0.2-0.6).
    type: "macro" or "micro"; None picks micro when the event lasts under 0.5 s.
    """

    kind: str
    onset: int
    apex: int
    offset: int
    intensity: float = 1.0
    type: str | None = None

    def validate(self, n_frames: int) -> None:
        if self.kind not in EVENT_KINDS:
            raise InputError(f"unknown event kind {self.kind!r}; choose from {sorted(EVENT_KINDS)}")
        if not 0 <= self.onset <= self.apex <= self.offset < n_frames:
            raise InputError(
                f"event {self.kind} needs 0 <= onset <= apex <= offset < {n_frames}, "
                f"got {self.onset}, {self.apex}, {self.offset}"
            )
        if self.type not in (None, "macro", "micro"):
            raise InputError(f"event type must be macro or micro, got {self.type!r}")

    def resolved_type(self, fps: float) -> str:
        if self.type is not None:
            return self.type
        return "micro" if (self.offset - self.onset + 1) / fps < MICRO_MAX_S else "macro"


@dataclass(frozen=True)
class HeadMotion:
    """Small smooth head motion: peak translation (px), roll (deg), relative scale change."""

    translate_px: float = 0.0
    rotate_deg: float = 0.0
    scale: float = 0.0

    @property
    def still(self) -> bool:
        return self.translate_px == 0 and self.rotate_deg == 0 and self.scale == 0


@dataclass(frozen=True)
class ClipSpec:
    """What to render: frame count, rate, output size (W, H), events, head motion, noise.

    noise_std: per-pixel Gaussian sensor noise (grey levels, 0 = none); seed drives head motion
    phases and noise.
    """

    n_frames: int
    fps: float = 30.0
    size: tuple[int, int] = (640, 360)
    events: tuple[WarpEvent, ...] = ()
    head_motion: HeadMotion = field(default_factory=HeadMotion)
    noise_std: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        if self.n_frames < 1 or self.fps <= 0:
            raise InputError("clip needs n_frames >= 1 and fps > 0")
        w, h = self.size
        if w < 64 or h < 64 or w % 2 or h % 2:
            raise InputError(f"clip size must be even and >= 64, got {self.size}")
        for e in self.events:
            e.validate(self.n_frames)


def event_profile(event: WarpEvent, n_frames: int) -> np.ndarray:
    """(n_frames,) float in [0, 1]: 0 outside [onset, offset], 1 exactly at the apex.

    Raised-cosine rise over onset..apex and fall over apex..offset, so the apex is the unique
    maximum whenever onset < apex < offset.
    """
    t = np.arange(n_frames, dtype=np.float64)
    s = np.zeros(n_frames)
    on, ap, off = event.onset, event.apex, event.offset
    rise = (t >= on) & (t <= ap)
    s[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - on + 1) / (ap - on + 1))
    fall = (t > ap) & (t <= off)
    s[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - ap) / (off - ap + 1))
    s[ap] = 1.0
    return s


def _crop_affine(size: tuple[int, int]) -> tuple[float, np.ndarray]:
    """(k, a0): output pixel y = (astronaut pixel - a0) * k."""
    w, h = size
    k = w / _CROP_W
    a0 = np.array([_FACE_CENTRE[0] - _CROP_W / 2, _FACE_CENTRE[1] - (h / k) / 2])
    return k, a0


@functools.lru_cache(maxsize=4)
def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as e:
        raise DependencyError("warped clips need scikit-image: pip install scikit-image") from e
    return np.ascontiguousarray(data.astronaut())


@functools.lru_cache(maxsize=4)
def neutral_face(size: tuple[int, int] = (640, 360)) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, mesh (478, 3) float32 px) of the neutral crop at ``size``.

    The mesh comes from one static MediaPipe face-mesh run (iris refinement on).
    """
    from stream.tracker_mediapipe import _quiet_native_stderr, _to_pixels, import_mediapipe

    w, h = size
    image = _render_one(size, np.zeros((h, w, 2), np.float32), np.eye(3))
    mp = import_mediapipe()
    with _quiet_native_stderr(True):
        with mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=1
        ) as fm:
            result = fm.process(image)
    if not result.multi_face_landmarks:
        raise RuntimeError("MediaPipe found no face in the neutral astronaut crop")
    mesh = _to_pixels(result.multi_face_landmarks[0].landmark, w, h)
    image.setflags(write=False)
    mesh.setflags(write=False)
    return image, mesh


def _tps_field(
    points: np.ndarray, values: np.ndarray, size: tuple[int, int], unit: float
) -> np.ndarray:
    """Thin-plate-spline interpolation of (N, 2) point displacements to an (H, W, 2) field."""
    import cv2

    w, h = size
    p = points / unit
    n = len(p)
    r2 = np.sum((p[:, None, :] - p[None, :, :]) ** 2, axis=-1)
    kmat = 0.5 * r2 * np.log(r2 + 1e-12)
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = kmat + 1e-3 * np.eye(n)  # light smoothing: near-duplicate points stay stable
    a[:n, n] = 1.0
    a[:n, n + 1 :] = p
    a[n, :n] = 1.0
    a[n + 1 :, :n] = p.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = values
    coef = np.linalg.solve(a, rhs)
    gx = np.arange(0, w + _GRID_STEP, _GRID_STEP, dtype=np.float64)
    gy = np.arange(0, h + _GRID_STEP, _GRID_STEP, dtype=np.float64)
    g = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2) / unit
    out = np.empty((len(g), 2))
    for i in range(0, len(g), 4096):  # chunks keep the (chunk, N) kernel small
        q = g[i : i + 4096]
        d2 = np.sum((q[:, None, :] - p[None, :, :]) ** 2, axis=-1)
        kq = 0.5 * d2 * np.log(d2 + 1e-12)
        out[i : i + 4096] = kq @ coef[:n] + coef[n] + q @ coef[n + 1 :]
    coarse = out.reshape(len(gy), len(gx), 2).astype(np.float32)
    # bilinear upsampling with exact node placement: grid node j sits on pixel j * step
    grid = _grid(size)
    return cv2.remap(coarse, grid[..., 0] / _GRID_STEP, grid[..., 1] / _GRID_STEP, cv2.INTER_LINEAR)


def _unit_field(
    kind: EventKind, mesh: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(field (H, W, 2) float32 px, landmark displacements (478, 2) px) at intensity 1."""
    w, h = size
    iod = float(np.linalg.norm(mesh[468, :2] - mesh[473, :2]))
    disp = landmark_displacements(kind, mesh[:, :2].astype(np.float64), iod)
    border = [(x, y) for x in np.linspace(0, w - 1, 9) for y in (0.0, h - 1.0)]
    border += [(x, y) for x in (0.0, w - 1.0) for y in np.linspace(0, h - 1, 6)[1:-1]]
    pts = np.concatenate([mesh[:, :2].astype(np.float64), np.array(border)])
    vals = np.concatenate([disp, np.zeros((len(border), 2))])
    return _tps_field(pts, vals, size, unit=iod), disp.astype(np.float32)


def _head_transforms(spec: ClipSpec, centre: np.ndarray) -> np.ndarray:
    """(T, 3, 3) similarity transforms neutral -> output pixels, smooth in time."""
    t = np.arange(spec.n_frames) / spec.fps
    rng = np.random.default_rng(spec.seed)
    ph = rng.uniform(0, 2 * np.pi, size=4)
    hm = spec.head_motion
    tx = hm.translate_px * np.sin(2 * np.pi * 0.23 * t + ph[0])
    ty = 0.6 * hm.translate_px * np.sin(2 * np.pi * 0.31 * t + ph[1])
    th = np.deg2rad(hm.rotate_deg) * np.sin(2 * np.pi * 0.17 * t + ph[2])
    sc = 1.0 + hm.scale * np.sin(2 * np.pi * 0.13 * t + ph[3])
    out = np.tile(np.eye(3), (spec.n_frames, 1, 1))
    c, s = np.cos(th) * sc, np.sin(th) * sc
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = c, -s, s, c
    # x_out = c + M (y - c) + t
    out[:, 0, 2] = centre[0] + tx - (c * centre[0] - s * centre[1])
    out[:, 1, 2] = centre[1] + ty - (s * centre[0] + c * centre[1])
    return out


@functools.lru_cache(maxsize=2)
def _grid(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)


def _render_one(size: tuple[int, int], field_px: np.ndarray, head: np.ndarray) -> np.ndarray:
    """One (H, W, 3) uint8 frame from a displacement field and a neutral -> output transform."""
    import cv2

    grid = _grid(size)
    inv = np.linalg.inv(head)
    # y = S^-1 x (neutral coordinates of every output pixel)
    yx = grid[..., 0] * inv[0, 0] + grid[..., 1] * inv[0, 1] + inv[0, 2]
    yy = grid[..., 0] * inv[1, 0] + grid[..., 1] * inv[1, 1] + inv[1, 2]
    if np.any(field_px):
        d = cv2.remap(field_px, yx, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        yx, yy = yx - d[..., 0], yy - d[..., 1]
    k, a0 = _crop_affine(size)
    mx = (yx / k + a0[0]).astype(np.float32)
    my = (yy / k + a0[1]).astype(np.float32)
    return cv2.remap(_astronaut(), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


class _Renderer:
    """Precomputed fields and transforms for one ClipSpec."""

    def __init__(self, spec: ClipSpec):
        spec.validate()
        self.spec = spec
        _, self.mesh = neutral_face(spec.size)
        self.iod = float(np.linalg.norm(self.mesh[468, :2] - self.mesh[473, :2]))
        centre = self.mesh[:, :2].mean(axis=0)
        self.head = _head_transforms(spec, centre)
        self.profiles = (
            np.stack([event_profile(e, spec.n_frames) * e.intensity for e in spec.events])
            if spec.events
            else np.zeros((0, spec.n_frames))
        )
        self.fields = []
        self.disps = []
        for e in spec.events:
            f, d = _unit_field(EVENT_KINDS[e.kind], self.mesh, spec.size)
            self.fields.append(f)
            self.disps.append(d)

    def frame(self, i: int, rng: np.random.Generator | None) -> np.ndarray:
        w, h = self.spec.size
        field_px = np.zeros((h, w, 2), np.float32)
        for s, f in zip(self.profiles[:, i], self.fields, strict=True):
            if s != 0:
                field_px += np.float32(s) * f
        img = _render_one(self.spec.size, field_px, self.head[i])
        if rng is not None and self.spec.noise_std > 0:
            noise = rng.normal(0.0, self.spec.noise_std, img.shape)
            img = np.clip(img + noise, 0, 255).astype(np.uint8)
        return img

    def landmarks(self) -> np.ndarray:
        t = self.spec.n_frames
        pts = np.repeat(self.mesh[None, :, :2].astype(np.float64), t, axis=0)
        for s, d in zip(self.profiles, self.disps, strict=True):
            pts += s[:, None, None] * d[None]
        ones = np.ones((t, pts.shape[1], 1))
        homo = np.concatenate([pts, ones], axis=-1)
        return np.einsum("tij,tnj->tni", self.head[:, :2, :], homo).astype(np.float32)


def render_frames(spec: ClipSpec) -> Iterator[np.ndarray]:
    """Yield the clip's frames, (H, W, 3) uint8 RGB each, in order."""
    r = _Renderer(spec)
    rng = np.random.default_rng(spec.seed + 1) if spec.noise_std > 0 else None
    for i in range(spec.n_frames):
        yield r.frame(i, rng)


def true_landmarks(spec: ClipSpec) -> np.ndarray:
    """(T, 478, 2) float32 pixel positions the warp moves the neutral mesh to, per frame."""
    return _Renderer(spec).landmarks()


def ground_truth(spec: ClipSpec) -> dict:
    """JSON-able ground truth of a clip (see the module docstring)."""
    spec.validate()
    _, mesh = neutral_face(spec.size)
    events = []
    for e in spec.events:
        events.append(
            {
                "kind": e.kind,
                "type": e.resolved_type(spec.fps),
                "region": EVENT_KINDS[e.kind].region,
                "onset": e.onset,
                "apex": e.apex,
                "offset": e.offset,
                "intensity": e.intensity,
            }
        )
    return {
        "fps": spec.fps,
        "frames": spec.n_frames,
        "size": list(spec.size),
        "iod_px": round(float(np.linalg.norm(mesh[468, :2] - mesh[473, :2])), 2),
        "seed": spec.seed,
        "events": events,
        "head_motion": asdict(spec.head_motion),
    }


def encode_mp4(
    frames: Iterator[np.ndarray],
    path: str | Path,
    fps: float,
    crf: int = 20,
    preset: str = "medium",
) -> int:
    """Encode RGB uint8 frames to H.264 mp4 (libx264, yuv420p); return the frame count."""
    from stream.source_file import import_av

    av = import_av()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    n = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": preset}
        for img in frames:
            if n == 0:
                stream.height, stream.width = img.shape[:2]
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(vf):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    return n


def make_clip(
    spec: ClipSpec,
    out_path: str | Path,
    json_path: str | Path | None = None,
    crf: int = 20,
    preset: str = "medium",
) -> dict:
    """Render and encode a clip; write ground truth to ``json_path`` if given; return it."""
    gt = ground_truth(spec)
    n = encode_mp4(render_frames(spec), out_path, spec.fps, crf=crf, preset=preset)
    log.info("wrote %s: %d frames, %d events", out_path, n, len(spec.events))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(gt, indent=1) + "\n")
    return gt
