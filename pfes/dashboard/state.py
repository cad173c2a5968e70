"""What the dashboard knows: recent intensity per track, events, stream health.

:class:`DashboardState` is fed messages from the ZeroMQ subscriber threads
(:meth:`DashboardState.feed`, thread-safe) and read by the web server in two ways:

* :meth:`full` -- everything a newly connected page needs (the last ``window_s`` seconds of
  intensity per track, the last ``max_events`` events, the latest status per stream);
* :meth:`take_updates` -- what arrived since the previous call, batched, so that the server
  pushes a few messages a second however many intensity points arrive.

Publisher restarts: event ``seq`` dedup goes through :class:`stream.subscribe.SeqTracker`
per endpoint (replayed events are dropped; a ``seq`` reused with another ``emitted_at`` means
a new publisher). A track whose source time goes back by more than a second starts a new
*epoch*: its curve is cleared (``resets`` in the update) and events are tagged with the epoch
of their track when they arrive, so the page marks only current events on the curve.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from stream.subscribe import Message, SeqTracker

__all__ = ["DashboardState", "track_key"]

BACKWARDS_S = 1.0  # source time going back by more than this = a new run of the stream


def track_key(stream: str, track: int) -> str:
    """``"<stream>/<track>"``, the key of one curve on the page."""
    return f"{stream}/{track}"


class _Curve:
    __slots__ = ("t", "i", "epoch", "last_t")

    def __init__(self) -> None:
        self.t: deque[float] = deque()
        self.i: deque[float] = deque()
        self.epoch = 0
        self.last_t = float("-inf")


class DashboardState:
    """Thread-safe store of the dashboard's data (see module docstring).

    window_s: seconds of source time kept per curve; max_events: events kept (oldest out).
    clock: wall clock (Unix seconds), injectable for tests.
    """

    def __init__(self, window_s: float = 60.0, max_events: int = 500, clock: Any = time.time):
        self.window_s = float(window_s)
        self.max_events = int(max_events)
        self._clock = clock
        self._lock = threading.Lock()
        self._curves: dict[str, _Curve] = {}
        self._events: deque[dict] = deque(maxlen=self.max_events)
        self._status: dict[str, dict] = {}
        self._seq: dict[str, SeqTracker] = {}
        self._pending_points: dict[str, tuple[list[float], list[float]]] = {}
        self._pending_events: list[dict] = []
        self._pending_status: dict[str, dict] = {}
        self._pending_resets: set[str] = set()
        self.messages = 0

    # -- writers (subscriber threads) ------------------------------------------------------
    def feed(self, endpoint: str, msg: Message) -> None:
        """Take one message received from ``endpoint``."""
        with self._lock:
            self.messages += 1
            if msg.kind == "intensity":
                self._feed_intensity(msg.stream, msg.body)
            elif msg.kind == "event":
                self._feed_event(endpoint, msg.body)
            elif msg.kind == "status":
                body = dict(msg.body)
                body["received_at"] = self._clock()
                body["endpoint"] = endpoint
                self._status[msg.stream] = body
                self._pending_status[msg.stream] = body

    def _feed_intensity(self, stream: str, body: dict) -> None:
        try:
            key = track_key(stream, int(body["track"]))
            t, value = float(body["t"]), float(body["intensity"])
        except (KeyError, TypeError, ValueError):
            return
        c = self._curves.get(key)
        if c is None:
            c = self._curves[key] = _Curve()
        if t <= c.last_t:
            if t > c.last_t - BACKWARDS_S:
                return  # a replayed last value, or out of order: already have it
            c.t.clear()
            c.i.clear()
            c.epoch += 1
            self._pending_resets.add(key)
            self._pending_points.pop(key, None)
        c.last_t = t
        c.t.append(t)
        c.i.append(value)
        while c.t and c.t[0] < t - self.window_s:
            c.t.popleft()
            c.i.popleft()
        ts, vs = self._pending_points.setdefault(key, ([], []))
        ts.append(t)
        vs.append(value)

    def _feed_event(self, endpoint: str, body: dict) -> None:
        seq = self._seq.setdefault(endpoint, SeqTracker())
        try:
            if not seq.feed(body).new:
                return
            key = track_key(str(body["stream"]), int(body["track"]))
        except (KeyError, TypeError, ValueError):
            return
        ev = dict(body)
        c = self._curves.get(key)
        ev["epoch"] = c.epoch if c is not None else 0
        ev["received_at"] = self._clock()
        self._events.append(ev)
        self._pending_events.append(ev)

    # -- readers (server) ------------------------------------------------------------------
    def full(self) -> dict:
        """Everything, as one ``{"type": "full", ...}`` message body."""
        with self._lock:
            return {
                "type": "full",
                "now": self._clock(),
                "window_s": self.window_s,
                "curves": {
                    k: {"t": list(c.t), "i": list(c.i), "epoch": c.epoch}
                    for k, c in self._curves.items()
                },
                "events": list(self._events),
                "status": dict(self._status),
                "publishers": self._publishers(),
            }

    def take_updates(self) -> dict:
        """What arrived since the last call, as one ``{"type": "update", ...}`` message body
        (``points`` per curve, ``resets``, ``events``, ``status``); ``now`` always."""
        with self._lock:
            out = {
                "type": "update",
                "now": self._clock(),
                "resets": {k: self._curves[k].epoch for k in sorted(self._pending_resets)},
                "points": {k: {"t": ts, "i": vs} for k, (ts, vs) in self._pending_points.items()},
                "events": self._pending_events,
                "status": self._pending_status,
                "publishers": self._publishers(),
            }
            self._pending_points = {}
            self._pending_events = []
            self._pending_status = {}
            self._pending_resets = set()
            return out

    def _publishers(self) -> dict:
        return {
            ep: {"missed": s.missed, "restarts": s.restarts, "last_seq": s.last}
            for ep, s in self._seq.items()
        }

    @property
    def event_count(self) -> int:
        with self._lock:
            return len(self._events)
