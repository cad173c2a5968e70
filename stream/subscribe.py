"""Subscribing to a pfes publisher: messages in, gaps in ``seq`` reported.

``Subscriber(endpoint, topics)`` is a context manager around a SUB socket; ``recv(timeout_s)``
returns one :class:`Message` or None. :class:`SeqTracker` turns the event stream into
"new / duplicate / gap" decisions: the publisher replays recent events to late subscribers,
so duplicates are normal and dropped; a jump in ``seq`` means missed events; a ``seq`` seen
before with a different ``emitted_at`` means the publisher restarted.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from stream.publish import DEFAULT_ENDPOINT, check_endpoint, import_zmq

__all__ = ["Message", "Subscriber", "SeqTracker", "SeqResult", "LagMeter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One received message. kind: "event" | "intensity" | "status"; body: parsed JSON."""

    topic: str
    kind: str
    stream: str
    body: dict


class Subscriber:
    """SUB socket connected to ``endpoint`` and subscribed to topic prefixes.

    topics: prefixes such as ``"event."`` or ``"status.cam1"``; ``("",)`` means everything.
    curve: a :class:`stream.curve.CurveClient` for a publisher that uses CURVE.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        topics: tuple[str, ...] | list[str] = ("event.", "status."),
        context: Any = None,
        rcvhwm: int = 10000,
        curve: Any = None,
    ):
        zmq = import_zmq()
        self._zmq = zmq
        check_endpoint(endpoint)
        self.endpoint = endpoint
        self._ctx = context or zmq.Context.instance()
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
        if curve is not None:
            sock.curve_secretkey = curve.secret
            sock.curve_publickey = curve.public
            sock.curve_serverkey = curve.server_public
        for t in topics:
            sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        sock.connect(endpoint)
        self._sock = sock
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self.bad_messages = 0

    def recv(self, timeout_s: float | None = None) -> Message | None:
        """Next message, or None after ``timeout_s`` seconds (None: wait forever)."""
        timeout_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
        while True:
            if not self._poller.poll(timeout_ms):
                return None
            frames = self._sock.recv_multipart()
            if len(frames) != 2:
                self.bad_messages += 1
                continue
            topic = frames[0].decode(errors="replace")
            try:
                body = json.loads(frames[1])
            except ValueError:
                self.bad_messages += 1
                log.warning("malformed message on %s", topic)
                continue
            kind, _, stream = topic.partition(".")
            return Message(topic=topic, kind=kind, stream=stream, body=body)

    def close(self) -> None:
        self._sock.close(0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class SeqResult:
    """What one event means: new or not, events missed just before it, publisher restart."""

    new: bool
    missed: int = 0
    restarted: bool = False


class SeqTracker:
    """Gap and duplicate detection for one publisher's ``seq`` (see module docstring)."""

    def __init__(self, memory: int = 4096):
        self._seen: OrderedDict[int, float] = OrderedDict()
        self._memory = int(memory)
        self.last = -1
        self.missed = 0
        self.duplicates = 0
        self.restarts = 0

    def feed(self, event: dict) -> SeqResult:
        seq = int(event["seq"])
        stamp = float(event.get("emitted_at", 0.0))
        restarted = False
        if seq in self._seen:
            if self._seen[seq] == stamp:
                self.duplicates += 1
                return SeqResult(new=False)
            # same number, different event: the publisher started again from 0
            self._seen.clear()
            self.last = -1
            self.restarts += 1
            restarted = True
        missed = 0
        if seq > self.last + 1 and not (self.last == -1 and not restarted and seq == 0):
            missed = seq - self.last - 1
            self.missed += missed
        self._seen[seq] = stamp
        while len(self._seen) > self._memory:
            self._seen.popitem(last=False)
        if seq > self.last:
            self.last = seq
        elif self.missed > 0:
            self.missed -= 1  # a late replay filled part of an earlier gap
        return SeqResult(new=True, missed=missed, restarted=restarted)


class LagMeter:
    """How far a subscriber is behind its publisher.

    Messages wait in two queues on their way (the publisher's per-subscriber queue, ``sndhwm``,
    and the subscriber's, ``rcvhwm``), so a status read from the same socket as the events is
    as late as they are. Feed :meth:`publisher` from a second, always-drained socket
    subscribed to ``status.`` only (its queue stays short, so it holds the publisher's
    current ``last_seq``), and :meth:`read` with each event read from the main socket.

    behind_events: the publisher's latest seq minus the newest seq read (0 when caught up).
    behind_s: wall-clock age of the newest event read (``emitted_at``; the publisher's and the
        subscriber's clocks must agree, which they do on one machine).
    """

    def __init__(self) -> None:
        self.publisher_seq = -1
        self.read_seq = -1
        self.behind_s = 0.0

    def publisher(self, status: dict) -> None:
        seq = status.get("last_seq")
        if isinstance(seq, int):
            self.publisher_seq = max(self.publisher_seq, seq)

    def read(self, event: dict, now: float | None = None) -> None:
        self.read_seq = max(self.read_seq, int(event["seq"]))
        self.publisher_seq = max(self.publisher_seq, self.read_seq)
        stamp = event.get("emitted_at")
        if isinstance(stamp, (int, float)):
            self.behind_s = max(0.0, (time.time() if now is None else now) - float(stamp))

    @property
    def behind_events(self) -> int:
        return max(0, self.publisher_seq - self.read_seq)
