"""Bad input that used to pass silently: a truncated video, a NaN-only landmark file, a
header-only annotations.csv, and ``pfes listen`` writing into a closed pipe."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
from pipeline_fakes import free_port
from test_cli_errors import HEADER, _dataset, _fails

from stream.publish import ZmqPublisher
from stream.source_file import FileSource

N = 60


def _clip(path: Path) -> Path:
    c = av.open(str(path), "w", options={"movflags": "faststart"})  # index first: playable cut
    s = c.add_stream("libx264", rate=30)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    s.options = {"g": "5"}
    rng = np.random.default_rng(0)
    for _ in range(N):
        img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def test_truncated_video_warns_with_the_counts(tmp_path, caplog):
    whole = _clip(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="stream.source_file"):
        src = FileSource(whole)
        assert sum(1 for _ in src) == N and src.n_frames == N
        src.close()
        assert not caplog.records  # a whole file says nothing
        src = FileSource(cut)
        got = sum(1 for _ in src)
        src.close()
    assert 0 < got < N
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [
        f"{cut}: decoded {got} of the {N} frames the container lists: "
        "the file is truncated or damaged"
    ]


def test_nan_only_landmark_file_is_a_one_line_error(capsys, tmp_path):
    ds = _dataset(tmp_path / "ds")
    lm = np.full((30, 478, 3), np.nan, np.float32)
    np.savez(
        ds / "landmarks" / "s1_v.npz",
        landmarks=lm,
        valid=np.ones(30, bool),
        fps=np.float64(30.0),
        image_size=np.array([640, 480], np.int32),
    )
    line = _fails(
        capsys,
        ["train", "--data", str(ds), "--out", str(tmp_path / "m.pt"), "--epochs", "1"],
        2,
        "landmarks are NaN in every frame",
        progress=True,
    )
    assert "s1_v.npz" in line and "30 of 30 frames are marked valid" in line


def test_header_only_annotations_do_not_train_a_model(capsys, tmp_path):
    ds = _dataset(tmp_path / "ds", rows="")
    assert (ds / "annotations.csv").read_text() == HEADER
    out = tmp_path / "m.pt"
    _fails(capsys, ["train", "--data", str(ds), "--out", str(out)], 2, "lists no expressions")
    assert not out.exists()


def test_listen_into_a_closed_pipe_exits_quietly(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pfes = Path(sys.executable).with_name("pfes")
    with ZmqPublisher(endpoint) as pub:
        # `pfes listen --topics status | head -2`, as a shell would run it
        sh = subprocess.Popen(
            f"set -o pipefail; '{pfes}' listen --connect {endpoint} --topics status | head -2",
            shell=True,
            executable="/bin/bash",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert pub.wait_for_subscribers(1, timeout_s=60)
        deadline = time.monotonic() + 60
        while sh.poll() is None and time.monotonic() < deadline:
            pub.send("status.cam", {"schema": "pfes.status/1", "stream": "cam", "fps": 30.0})
            time.sleep(0.02)
        out, err = sh.communicate(timeout=30)
    assert len(out.splitlines()) == 2
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert sh.returncode == 0, err  # pipefail: this is listen's own exit code
