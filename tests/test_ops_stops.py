"""Stops: a real ``pfes run`` process on the bundled demo clip, stopped by a real signal in the
middle of an expression, flushes that expression to the JSONL file and to a real SUB socket,
prints the summary and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_fakes import free_port

from pfes.commands.run import DEMO_CLIP, DEMO_TRUTH
from pfes.stops import StopRequested, StopSignals
from stream.subscribe import Subscriber

PFES = Path(sys.executable).with_name("pfes")


def test_stop_signals_raise_once_then_record():
    with StopSignals() as stops:
        with pytest.raises(StopRequested) as e:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode
        assert e.value.signame == "SIGTERM"
        os.kill(os.getpid(), signal.SIGHUP)  # a repeat while stopping: recorded, not raised
        time.sleep(0.05)
        assert stops.received == ["SIGTERM", "SIGHUP"]
        with pytest.raises(StopRequested):  # a second Ctrl-C still interrupts
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        stops.disarm()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def _ignore_sigint() -> None:  # what a non-interactive shell does to a background job
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.mediapipe
@pytest.mark.skipif(not DEMO_CLIP.is_file(), reason="bundled demo clip not built")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_mid_expression_flushes_to_jsonl_and_zmq(tmp_path, sig):
    pytest.importorskip("mediapipe")
    first = json.loads(DEMO_TRUTH.read_text())["events"][0]  # a macro, frames 75-125
    stop_at = (first["apex"] + first["offset"]) // 2  # after the peak, before it closes
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    evp = tmp_path / "ev.jsonl"
    proc = subprocess.Popen(
        # the network's detector alone: the real-face stage reads the demo photo's smile as
        # one long expression from frame 0 (docs/real-faces.md), which is not what this checks
        [str(PFES), "run", "--publish", endpoint, "--events", str(evp), "--wait-subscribers", "1",
         "--no-real-face"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sig == signal.SIGINT else None,
    )
    got: list[dict] = []
    try:
        with Subscriber(endpoint, topics=["event.", "intensity."]) as sub:
            deadline = time.monotonic() + 120
            sent = False
            while time.monotonic() < deadline:
                m = sub.recv(timeout_s=0.5)
                if m is None:
                    if proc.poll() is not None:
                        break
                    continue
                if m.kind == "event":
                    got.append(m.body)
                    if sent:
                        break
                elif not sent and m.body["frame"] >= stop_at:
                    proc.send_signal(sig)
                    sent = True
            out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert sent, err
    assert proc.returncode == 0, err
    assert f"stopped by {signal.Signals(sig).name}; open expressions were flushed" in err
    assert "demo: " in out and " frames, face in " in out  # the summary
    lines = evp.read_text().splitlines()
    assert lines and all(json.loads(x) for x in lines)  # whole lines only
    flushed = json.loads(lines[-1])
    # the expression open at the stop, cut short: it began near the truth's onset and was
    # closed at the last frame processed, before the truth's offset
    assert flushed["onset_frame"] <= first["apex"] <= flushed["offset_frame"] < first["offset"] + 5
    assert flushed["emitted_frame"] < first["offset"] + 10
    assert flushed in got  # the same event reached the subscriber
