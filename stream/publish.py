"""Publishing events: a ZeroMQ PUB socket (and, re-exported, the JSONL event file).

Wire format (docs/design.md): two-frame messages ``[topic, json]`` with topics
``event.<stream>``, ``intensity.<stream>`` and ``status.<stream>``. The socket is an XPUB
(a PUB that also sees subscriptions), which gives two things:

* **late subscribers**: when a subscription arrives, the publisher re-sends the last value
  of every matching ``status``/``intensity`` topic and the last ``replay_events`` events
  (a last-value cache plus a short replay, the zguide's LVC pattern). Replayed events go to
  every matching subscriber, so subscribers drop events whose ``seq`` they have seen
  (:class:`stream.subscribe.SeqTracker` does).
* **a handshake instead of sleeps**: :meth:`ZmqPublisher.wait_for_subscribers` returns once
  ``n`` subscriptions have arrived.

A slow subscriber never blocks the pipeline: sends are non-blocking, and once a subscriber's
queue holds ``sndhwm`` messages ZeroMQ drops further messages *for that subscriber only*; it
sees the loss as a gap in ``seq``. Sends that fail outright are counted in ``dropped``.
Messages with no matching subscription are not even encoded (:meth:`ZmqPublisher.wants`).

Threading: a ZeroMQ socket belongs to one thread; the pipeline publishes from its engine
thread only.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from typing import Any

from pfes.errors import DependencyError, InputError
from stream.events_file import EventWriter  # the --events JSONL file (re-exported)

__all__ = [
    "DEFAULT_ENDPOINT",
    "Publisher",
    "NullPublisher",
    "ZmqPublisher",
    "EventWriter",
    "check_endpoint",
    "import_zmq",
]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"


def import_zmq() -> Any:
    try:
        import zmq
    except ImportError as e:  # pragma: no cover - pyzmq is a core dependency
        raise DependencyError("pyzmq is required to publish events: pip install pyzmq") from e
    return zmq


def check_endpoint(endpoint: str) -> str:
    """Validate a ZeroMQ endpoint (``tcp://HOST:PORT``, ``tcp://HOST:*``, ``ipc://``, ``inproc://``)."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise InputError(f"bad ZeroMQ endpoint {endpoint!r}; use e.g. {DEFAULT_ENDPOINT}")
    scheme, rest = endpoint.split("://", 1)
    if scheme not in ("tcp", "ipc", "inproc") or not rest:
        raise InputError(f"bad ZeroMQ endpoint {endpoint!r}; use tcp://HOST:PORT, ipc:// or inproc://")
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        if not host or not (port == "*" or (port.isdigit() and 0 <= int(port) < 65536)):
            raise InputError(f"bad ZeroMQ endpoint {endpoint!r}; use tcp://HOST:PORT")
    return endpoint


class Publisher:
    """Interface: ``send(topic, body)`` one message; ``poll()`` housekeeping; ``close()``."""

    endpoint: str | None = None
    sent = 0
    dropped = 0

    def wants(self, topic: str) -> bool:
        """True if anyone may receive ``topic`` (lets callers skip encoding)."""
        return True

    def send(self, topic: str, body: dict | str) -> bool:
        raise NotImplementedError

    def poll(self) -> None:
        """Process pending subscriptions (late-subscriber replay); cheap, call often."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullPublisher(Publisher):
    """Publishes nothing (``--publish off``)."""

    def wants(self, topic: str) -> bool:
        return False

    def send(self, topic: str, body: dict | str) -> bool:
        return True


def _encode(body: dict | str) -> bytes:
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


class ZmqPublisher(Publisher):
    """XPUB socket bound to ``endpoint`` with a last-value cache and a short event replay.

    endpoint: bind address; ``tcp://127.0.0.1:*`` picks a free port (see ``self.endpoint``).
    sndhwm: per-subscriber queue limit in messages.
    replay_events: how many recent ``event.*`` messages a new subscriber is sent.
    context: a ``zmq.Context`` (default: the process-wide instance).
    linger_s: at :meth:`close`, wait at most this long for queued messages to reach the
        subscribers (0: drop them). With a positive linger and no ``context`` the publisher
        owns its context and terminates it at close, which is what makes ZeroMQ actually
        deliver before the process exits; the wait is bounded by ``linger_s``.
    curve: a :class:`stream.curve.CurveServer`: encrypt, and admit only its clients
        (stream/curve.py); None: plain TCP.
    journal: a :class:`stream.journal.EventJournal`; every event is appended to it before it
        is sent, so that anything a subscriber could have seen can be replayed.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        sndhwm: int = 1000,
        replay_events: int = 256,
        context: Any = None,
        linger_s: float = 0.0,
        curve: Any = None,
        journal: Any = None,
    ):
        zmq = import_zmq()
        self._zmq = zmq
        check_endpoint(endpoint)
        self.linger_s = max(0.0, float(linger_s))
        self._own_ctx = context is None and (self.linger_s > 0 or curve is not None)
        self._ctx = context or (zmq.Context() if self._own_ctx else zmq.Context.instance())
        self.context = self._ctx
        self.journal = journal
        sock = self._ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, int(sndhwm))
        sock.setsockopt(zmq.XPUB_VERBOSER, 1)  # see every (un)subscribe, also repeated ones
        self._auth = None
        if curve is not None:
            from zmq.auth import CURVE_ALLOW_ANY
            from zmq.auth.thread import ThreadAuthenticator

            self._auth = ThreadAuthenticator(self._ctx, log=log)
            self._auth.start()
            allowed = CURVE_ALLOW_ANY if curve.clients_dir is None else str(curve.clients_dir)
            self._auth.configure_curve(domain="*", location=allowed)
            sock.curve_secretkey = curve.secret
            sock.curve_publickey = curve.public
            sock.curve_server = True
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as e:
            sock.close(0)
            self._stop_auth()
            if self._own_ctx:
                self._ctx.term()
            raise InputError(f"cannot publish on {endpoint}: {e}") from e
        self._sock = sock
        self.endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._last: dict[str, bytes] = {}  # status/intensity topic -> last body
        self._events: deque[tuple[bytes, bytes]] = deque(maxlen=max(0, int(replay_events)))
        self._subs: dict[bytes, int] = {}  # prefix -> number of subscriptions
        self._wants: dict[str, bool] = {}
        self.sent = 0
        self.dropped = 0
        self.replayed = 0
        self.subscriptions = 0  # subscribe messages seen in total
        self._closed = False
        log.info("publishing on %s", self.endpoint)

    # -- subscriptions ---------------------------------------------------------------------
    def poll(self) -> None:
        zmq = self._zmq
        while True:
            try:
                msg = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not msg:
                continue
            prefix = bytes(msg[1:])
            if msg[0] == 1:
                self._subs[prefix] = self._subs.get(prefix, 0) + 1
                self.subscriptions += 1
                self._wants.clear()
                self._replay(prefix)
            elif msg[0] == 0:
                n = self._subs.get(prefix, 0) - 1
                if n > 0:
                    self._subs[prefix] = n
                else:
                    self._subs.pop(prefix, None)
                self._wants.clear()

    def _replay(self, prefix: bytes) -> None:
        for topic, body in self._last.items():
            t = topic.encode()
            if t.startswith(prefix):
                self._raw_send(t, body)
                self.replayed += 1
        for t, body in list(self._events):
            if t.startswith(prefix):
                self._raw_send(t, body)
                self.replayed += 1

    def wait_for_subscribers(self, n: int = 1, timeout_s: float = 5.0) -> bool:
        """Block until ``n`` subscriptions have arrived in total (a handshake); False on timeout."""
        zmq = self._zmq
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        deadline = time.monotonic() + timeout_s
        self.poll()
        while self.subscriptions < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(int(left * 1000) + 1)
            self.poll()
        return True

    def wants(self, topic: str) -> bool:
        w = self._wants.get(topic)
        if w is None:
            t = topic.encode()
            w = any(t.startswith(p) for p in self._subs)
            self._wants[topic] = w
        return w

    # -- sending ---------------------------------------------------------------------------
    def _raw_send(self, topic: bytes, body: bytes) -> bool:
        zmq = self._zmq
        try:
            self._sock.send_multipart([topic, body], flags=zmq.NOBLOCK, copy=True)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def send(self, topic: str, body: dict | str) -> bool:
        """Send one message without blocking; False if it was dropped."""
        if self._closed:
            raise RuntimeError("publisher is closed")
        self.poll()
        data = _encode(body)
        t = topic.encode()
        if topic.startswith("event."):
            if self.journal is not None:
                seq = body["seq"] if isinstance(body, dict) else json.loads(data)["seq"]
                self.journal.append(int(seq), data)
            self._events.append((t, data))
        else:
            self._last[topic] = data
        return self._raw_send(t, data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # bounded linger: never hang on exit waiting for a subscriber that does not read
            self._sock.close(int(self.linger_s * 1000))
            self._stop_auth()
            if self._own_ctx:
                self._ctx.term()  # returns once queued messages are out or linger_s is over

    def _stop_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
