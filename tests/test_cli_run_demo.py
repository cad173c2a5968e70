"""``pfes run`` end to end with real MediaPipe: the bundled demo clip, and a clip with no face."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from pipeline_fakes import save_small_model

from pfes.cli import main
from pfes.commands.run import DEMO_CLIP

pytest.importorskip("mediapipe")
pytestmark = [pytest.mark.mediapipe, pytest.mark.slow]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_small_model(tmp_path_factory.mktemp("m") / "m.pt")


@pytest.mark.skipif(not DEMO_CLIP.is_file(), reason="bundled demo clip not built")
def test_demo_runs_in_one_command(capsys, tmp_path, model):
    evp = tmp_path / "ev.jsonl"
    rc = main(["run", "--model", model, "--fast", "--stats", "--events", str(evp),
               "--publish", "tcp://127.0.0.1:*"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    out = cap.out
    assert "demo: 600 frames, face in" in out
    assert "known expressions (IoU >= 0.5, same kind)" in out
    for stage in ("decode", "landmarks", "features", "engine", "detector", "publish", "compute"):
        assert f"\n{stage} " in out
    lines = evp.read_text().splitlines()
    printed = [x for x in out.splitlines() if x.startswith("demo ") and "latency" in x]
    assert len(lines) == len(printed)
    assert [json.loads(x)["seq"] for x in lines] == list(range(len(lines)))
    faces = int(out.split("face in ")[1].split(",")[0])
    assert faces > 550  # MediaPipe finds the face in (nearly) every frame


def test_video_without_face_says_so(capsys, tmp_path, model):
    p = tmp_path / "noface.mp4"
    c = av.open(str(p), "w")
    s = c.add_stream("libx264", rate=30)
    s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
    rng = np.random.default_rng(0)
    for _ in range(20):
        img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(pk)
    for pk in s.encode():
        c.mux(pk)
    c.close()
    rc = main(["run", str(p), "--model", model, "--fast", "--publish", "off"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "noface: 20 frames, face in 0, 0 events" in out
    assert "no face found" in out


def test_no_verifier_turns_off_only_the_bundled_models_verifier():
    import dataclasses

    from pfes.commands.run import _open_model

    _, det = _open_model(None, None)
    _, off = _open_model(None, None, no_verifier=True)
    assert det.instance_verifier and off.instance_verifier == ()
    assert dataclasses.replace(det, instance_verifier=()) == off
