"""ZeroMQ publisher / subscriber, event schema and JSONL writer (real sockets on loopback)."""

from __future__ import annotations

import json
import time

import pytest
import zmq

from pfes.errors import InputError
from stream.events import EVENT_SCHEMA, Event, EventSequencer, parse_event
from stream.publish import EventWriter, ZmqPublisher, check_endpoint
from stream.subscribe import SeqTracker, Subscriber

EP = "tcp://127.0.0.1:*"


def _event(seq: int, stream: str = "cam", stamp: float = 1.0) -> Event:
    return Event(EVENT_SCHEMA, seq, stream, 0, "micro", 10, 12, 15, 0.33, 0.4, 0.5, 0.7, 0.9,
                 16, stamp, 1.5)


def _recv_until(sub: Subscriber, n: int, deadline_s: float = 5.0) -> list:
    out, end = [], time.monotonic() + deadline_s
    while len(out) < n and time.monotonic() < end:
        m = sub.recv(timeout_s=0.05)
        if m is not None:
            out.append(m)
    return out


def test_publish_and_receive_with_handshake():
    with ZmqPublisher(EP) as pub, Subscriber(pub.endpoint, topics=["event."]) as sub:
        assert pub.endpoint.startswith("tcp://127.0.0.1:")
        assert pub.wait_for_subscribers(1, timeout_s=5.0)
        assert pub.wants("event.cam") and not pub.wants("intensity.cam")
        pub.send("event.cam", _event(0).to_json())
        pub.send("status.cam", {"fps": 30})  # not subscribed: filtered out
        pub.send("event.cam", _event(1).to_json())
        msgs = _recv_until(sub, 2)
    assert [m.topic for m in msgs] == ["event.cam", "event.cam"]
    assert [m.body["seq"] for m in msgs] == [0, 1]
    assert msgs[0].kind == "event" and msgs[0].stream == "cam"
    assert parse_event(msgs[0].body) == _event(0)


def test_late_subscriber_gets_replay_and_last_status():
    with ZmqPublisher(EP, replay_events=2) as pub:
        for i in range(3):
            pub.send("event.cam", _event(i).to_json())
        pub.send("status.cam", {"fps": 29.0})
        pub.send("status.cam", {"fps": 30.0})
        with Subscriber(pub.endpoint, topics=["event.", "status."]) as sub:
            got = []
            end = time.monotonic() + 5.0
            while len(got) < 3 and time.monotonic() < end:
                pub.poll()  # the publisher's loop does this between frames
                m = sub.recv(timeout_s=0.02)
                if m is not None:
                    got.append(m)
    events = [m.body["seq"] for m in got if m.kind == "event"]
    status = [m.body for m in got if m.kind == "status"]
    assert events == [1, 2]  # the last replay_events events
    assert status == [{"fps": 30.0}]  # last value only


def test_slow_subscriber_never_blocks_publisher():
    with ZmqPublisher(EP, sndhwm=10) as pub, Subscriber(pub.endpoint, topics=[""], rcvhwm=10) as sub:
        assert pub.wait_for_subscribers(1)
        body = json.dumps({"x": "y" * 1000})
        t0 = time.monotonic()
        for _ in range(20000):
            pub.send("intensity.cam", body)
        elapsed = time.monotonic() - t0
        assert elapsed < 5.0
        # the subscriber never read: it holds at most its queue and the kernel buffers
        got = _recv_until(sub, 20000, deadline_s=0.5)
        assert 0 < len(got) < 20000


def test_endpoint_errors_are_one_line_input_errors():
    for bad in ["localhost:5556", "http://x:1", "tcp://127.0.0.1:notaport", "tcp://:5"]:
        with pytest.raises(InputError):
            check_endpoint(bad)
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.PUB)
    s.setsockopt(zmq.LINGER, 0)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    try:
        with pytest.raises(InputError, match="cannot publish"):
            ZmqPublisher(f"tcp://127.0.0.1:{port}")
    finally:
        s.close(0)


def test_seq_tracker_duplicates_gaps_and_restart():
    t = SeqTracker()
    assert t.feed({"seq": 0, "emitted_at": 1.0}).new
    assert t.feed({"seq": 1, "emitted_at": 2.0}).new
    assert not t.feed({"seq": 1, "emitted_at": 2.0}).new  # replayed duplicate
    r = t.feed({"seq": 4, "emitted_at": 3.0})
    assert r.new and r.missed == 2 and t.missed == 2
    r = t.feed({"seq": 0, "emitted_at": 9.0})  # same number, new stamp: publisher restarted
    assert r.new and r.restarted and t.restarts == 1
    assert t.feed({"seq": 1, "emitted_at": 10.0}).missed == 0


def test_event_schema_roundtrip_and_validation():
    ev = _event(3)
    d = json.loads(ev.to_json())
    assert list(d) == [
        "schema", "seq", "stream", "track", "kind", "onset_frame", "apex_frame", "offset_frame",
        "onset_s", "apex_s", "offset_s", "score", "class_prob", "emitted_frame", "emitted_at",
        "latency_ms", "interrupted", "what", "moved",
    ]
    assert parse_event(ev.to_json()) == ev
    v1 = {k: v for k, v in d.items() if k != "interrupted"}  # schema 1 still parses
    assert parse_event({**v1, "schema": "pfes.event/1"}).interrupted is False
    bad = dict(d)
    del bad["latency_ms"]
    with pytest.raises(InputError, match="lacks"):
        parse_event(bad)
    with pytest.raises(InputError, match="schema"):
        parse_event({**d, "schema": "other/1"})
    with pytest.raises(InputError, match="onset"):
        parse_event({**d, "apex_frame": 99})
    seqs = EventSequencer()
    assert [seqs.next() for _ in range(3)] == [0, 1, 2]


def test_event_writer_flushes_each_event(tmp_path):
    p = tmp_path / "ev.jsonl"
    w = EventWriter(p)
    w.write(_event(0))
    # readable before close: a crash after this point keeps the event
    assert [json.loads(x)["seq"] for x in p.read_text().splitlines()] == [0]
    w.write(_event(1))
    assert len(p.read_text().splitlines()) == 2
    w.close()
    with pytest.raises(InputError):
        EventWriter(tmp_path / "nope" / "ev.jsonl")
