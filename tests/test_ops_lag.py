"""Slow subscribers: the lag is bounded by the two high-water marks, what is dropped is
accounted for by ``seq``, and the lag is visible (status ``last_seq``; ``pfes listen``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pipeline_fakes import free_port

from stream.publish import ZmqPublisher
from stream.subscribe import LagMeter, SeqTracker, Subscriber

EP = "tcp://127.0.0.1:*"


def _event(seq: int, age_s: float = 0.0) -> dict:
    return {
        "schema": "pfes.event/2",
        "seq": seq,
        "emitted_at": time.time() - age_s,
        "pad": "x" * 200,
    }


def test_a_subscriber_that_does_not_read_is_bounded_and_every_event_accounted_for():
    n = 50_000
    with (
        ZmqPublisher(EP, sndhwm=100, replay_events=0) as pub,
        Subscriber(pub.endpoint, ["event."], rcvhwm=100) as sub,
    ):
        assert pub.wait_for_subscribers(1)
        for i in range(n):  # about 12 MB while the subscriber reads nothing
            pub.send("event.cam", _event(i))
        seqs = SeqTracker()
        got = 0
        while (m := sub.recv(timeout_s=0.5)) is not None:
            seqs.feed(m.body)
            got += 1
    assert 0 < got < n // 2  # queues and socket buffers are bounded: most were dropped
    tail = n - 1 - seqs.last  # dropped after the last one read
    assert got + seqs.missed + tail == n  # ...and each one is accounted for by seq


def test_lag_meter_sees_the_backlog_through_an_always_drained_status_socket():
    with (
        ZmqPublisher(EP) as pub,
        Subscriber(pub.endpoint, ["event."]) as sub,
        Subscriber(pub.endpoint, ["status."], rcvhwm=100) as status,
    ):
        assert pub.wait_for_subscribers(2)
        for i in range(500):
            pub.send("event.cam", _event(i))
            pub.send("status.cam", {"stream": "cam", "last_seq": i})
        lag = LagMeter()
        lag.read(sub.recv(timeout_s=5).body)
        while (m := status.recv(timeout_s=0.3)) is not None:
            lag.publisher(m.body)
        assert lag.publisher_seq == 499 and lag.behind_events == 499
        while (m := sub.recv(timeout_s=0.3)) is not None:
            lag.read(m.body)
    assert lag.behind_events == 0 and lag.behind_s < 5


def test_listen_reports_its_lag():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pfes = Path(sys.executable).with_name("pfes")
    with ZmqPublisher(endpoint) as pub:
        proc = subprocess.Popen(
            [str(pfes), "listen", "--connect", endpoint, "--count", "200"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert pub.wait_for_subscribers(2, timeout_s=60)  # events + its lag socket
            i = 0
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                pub.send("status.cam", {"stream": "cam", "last_seq": i + 1000})
                pub.send("event.cam", _event(i, age_s=3.0))  # read 3 s after publishing
                i += 1
                time.sleep(0.005)
            err = proc.communicate(timeout=30)[1]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "event(s) behind the publisher; the newest read was published 3." in err, err
