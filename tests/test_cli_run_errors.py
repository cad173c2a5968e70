"""``pfes run`` / ``pfes listen`` through pfes.cli.main: bad input gives one line and its exit code."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest
import torch
from pipeline_fakes import free_port, save_small_model, small_net

from engine.checkpoint import save_checkpoint
from pfes.cli import main
from stream.events import EVENT_SCHEMA, Event
from stream.features import feature_spec
from stream.publish import ZmqPublisher


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_small_model(tmp_path_factory.mktemp("m") / "m.pt")


def _one_line_error(capsys, code, rc, match):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == code
    assert len(err) >= 1 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("pfes run: error:") and match in err[-1], err


def test_missing_file_is_exit_2(capsys, model):
    rc = main(["run", "/no/such/clip.mp4", "--model", model, "--publish", "off"])
    _one_line_error(capsys, 2, rc, "not found")


def test_unsupported_source_is_exit_2(capsys, model):
    rc = main(["run", "http://example.com/x.mp4", "--model", model, "--publish", "off"])
    _one_line_error(capsys, 2, rc, "unsupported source")


def test_refused_rtsp_is_exit_3(capsys, model):
    rc = main(["run", f"rtsp://127.0.0.1:{free_port()}/cam", "--model", model,
               "--publish", "off", "--timeout", "2"])
    _one_line_error(capsys, 3, rc, "cannot open rtsp://")


def test_silent_rtsp_is_exit_3(capsys, model):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    try:
        t0 = time.monotonic()
        rc = main(["run", f"rtsp://127.0.0.1:{srv.getsockname()[1]}/cam", "--model", model,
                   "--publish", "off", "--timeout", "1"])
        assert time.monotonic() - t0 < 5
    finally:
        srv.close()
    _one_line_error(capsys, 3, rc, "cannot open")


def test_corrupt_video_is_exit_3(capsys, tmp_path, model):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    rc = main(["run", str(bad), "--model", model, "--publish", "off"])
    _one_line_error(capsys, 3, rc, "bad.mp4")


@pytest.mark.parametrize("kind", ["missing", "corrupt", "foreign", "features"])
def test_model_problems_are_exit_4(capsys, tmp_path, kind):
    p = tmp_path / "m.pt"
    if kind == "corrupt":
        p.write_bytes(b"not a checkpoint at all")
    elif kind == "foreign":
        torch.save({"weights": torch.zeros(3)}, p)
    elif kind == "features":  # trained on other features
        spec = dict(feature_spec(), version="other-features/9")
        save_checkpoint(p, small_net(5), {"feature_spec": spec})
    rc = main(["run", "--model", str(p), "--publish", "off"])
    _one_line_error(capsys, 4, rc, "")


def test_bad_publish_endpoint_is_exit_2(capsys, model):
    rc = main(["run", "--model", model, "--publish", "localhost:5556"])
    _one_line_error(capsys, 2, rc, "endpoint")


def test_listen_prints_events_and_reports_gaps(capsys):
    def ev(seq):
        return Event(EVENT_SCHEMA, seq, "cam", 0, "macro", 1, 2, 3, 0.1, 0.2, 0.3, 0.5, 0.8, 4,
                     100.0 + seq, 2.0).to_json()

    with ZmqPublisher("tcp://127.0.0.1:*") as pub:
        def publish():
            assert pub.wait_for_subscribers(1, timeout_s=10)
            for s in (0, 1, 1, 4):  # a replayed duplicate, then a gap of two
                pub.send("event.cam", ev(s))

        th = threading.Thread(target=publish)
        th.start()
        rc = main(["listen", "--connect", pub.endpoint, "--count", "3", "--timeout", "10",
                   "--json"])
        th.join()
    cap = capsys.readouterr()
    assert rc == 0
    assert [json.loads(x)["seq"] for x in cap.out.splitlines()] == [0, 1, 4]
    assert "missed 2 event(s) before #4" in cap.err


def test_listen_rejects_unknown_topic(capsys):
    rc = main(["listen", "--topics", "video"])
    assert rc == 2 and "unknown topic" in capsys.readouterr().err
