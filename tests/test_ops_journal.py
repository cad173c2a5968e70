"""The event journal: bounded on disk, numbering kept across restarts, and a subscriber that
was away gets everything after its last ``seq`` (``pfes listen --since``) with no gap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_fakes import free_port
from test_cli_errors import _fails

from pfes.errors import SourceError
from stream.journal import EventJournal, JournalServer, replay
from stream.publish import ZmqPublisher
from stream.subscribe import Subscriber


def _ev(seq: int) -> dict:
    return {
        "schema": "pfes.event/2",
        "seq": seq,
        "stream": "cam",
        "emitted_at": time.time(),
        "pad": "x" * 100,
    }


def test_journal_is_bounded_by_size_and_age_and_keeps_its_numbering(tmp_path):
    j = EventJournal(tmp_path, max_bytes=20_000, segment_bytes=4_000)
    for i in range(1000):  # about 150 KB of events
        j.append(i, json.dumps(_ev(i)))
    total = sum(p.stat().st_size for p in j.segments())
    assert total <= 20_000 + 200
    oldest = j.oldest_seq
    assert 0 < oldest < 1000 - 50 and total > 10_000  # the newest half or more is kept
    got = [json.loads(x)["seq"] for x in j.since(oldest - 1)]
    assert got == list(range(oldest, 1000))  # contiguous from the oldest kept
    assert [json.loads(x)["seq"] for x in j.since(995)] == [996, 997, 998, 999]
    j.close()
    again = EventJournal(tmp_path, max_bytes=20_000, segment_bytes=4_000, max_age_s=60)
    assert again.next_seq == 1000  # a new run goes on numbering
    old = time.time() - 3600
    for p in again.segments():
        os.utime(p, (old, old))
    again.append(1000, json.dumps(_ev(1000)))  # a new segment: the old ones are too old
    assert [json.loads(x)["seq"] for x in again.since(-1)] == [1000]
    again.append(5, json.dumps(_ev(5)))  # going back is refused, not journaled
    assert again.last_seq == 1000


def test_replay_pages_through_the_journal(tmp_path):
    j = EventJournal(tmp_path)
    for i in range(1234):
        j.append(i, json.dumps(_ev(i)))
    srv = JournalServer(j, "tcp://127.0.0.1:*", page=100)
    try:
        assert [e["seq"] for e in replay(srv.endpoint, 99)] == list(range(100, 1234))
        assert list(replay(srv.endpoint, 1233)) == []
        assert srv.requests == 12 + 1
    finally:
        srv.close()
    with pytest.raises(SourceError, match="no answer"):
        list(replay(f"tcp://127.0.0.1:{free_port()}", 0, timeout_s=0.3))


def test_listen_since_after_a_restart_has_no_gap(tmp_path):
    pub_ep = f"tcp://127.0.0.1:{free_port()}"
    j = EventJournal(tmp_path / "journal")
    with ZmqPublisher(pub_ep, journal=j) as pub:
        srv = JournalServer(j, "tcp://127.0.0.1:*", page=7)
        try:
            with Subscriber(pub_ep, ["event."]) as first:  # reads 0-9, then goes away
                assert pub.wait_for_subscribers(1)
                for i in range(10):
                    pub.send("event.cam", _ev(i))
                seen = [first.recv(timeout_s=5).body["seq"] for _ in range(10)]
            assert seen == list(range(10))
            for i in range(10, 300):  # nobody listening; more than the publisher's own replay
                pub.send("event.cam", _ev(i))
            pfes = Path(sys.executable).with_name("pfes")
            proc = subprocess.Popen(
                [
                    str(pfes),
                    "listen",
                    "--connect",
                    pub_ep,
                    "--since",
                    "9",
                    "--journal",
                    srv.endpoint,
                    "--json",
                    "--count",
                    "320",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                i = 300
                deadline = time.monotonic() + 60
                while proc.poll() is None and time.monotonic() < deadline:
                    pub.poll()
                    if pub.subscriptions >= 2 and i < 330:  # live events once it is there
                        pub.send("event.cam", _ev(i))
                        i += 1
                    time.sleep(0.01)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
        finally:
            srv.close()
    j.close()
    assert proc.returncode == 0, err
    got = [json.loads(x)["seq"] for x in out.splitlines()]
    assert got == list(range(10, 330)), (got[:5], got[-5:])
    # at least the 290 sent while it was away came from the journal (live ones may too)
    n = int(err.split("replayed ")[1].split(" ")[0])
    assert 290 <= n <= 320 and "gap:" not in err and "320 events, 0 missed" in err, err


def test_journal_options_fail_cleanly(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    _fails(capsys, ["run", "--journal", str(f / "sub")], 2, "journal")
    _fails(capsys, ["run", "--journal", str(tmp_path), "--publish", "off"], 2, "needs --publish")
    _fails(capsys, ["listen", "--since", "3", "--topics", "status"], 2, "--since needs")
