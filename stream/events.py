"""The event schema ``pfes.event/2``: one JSON object per spotted expression.

Version 2 added ``interrupted``: true when the expression was still open when its source lost
its frames (a camera loss or a gap) and was closed there; its ``offset_*`` is the last frame
seen, not the end of the expression. Version 1 events (no ``interrupted``) still parse.

Every field is documented in docs/design.md ("Event") and docs/live.md. Frame numbers count
decoded frames from 0 per source; ``*_s`` fields are source timestamps (container pts, or
the camera's clock), ``emitted_at`` is the publisher's wall clock (Unix seconds) and
``latency_ms`` runs from the arrival (``time.monotonic()``) of the frame whose processing
closed the instance to the moment the event is handed to the publisher.

``seq`` is assigned by :class:`EventSequencer`, one per publishing process, so that it is
gap-free across all the streams that process publishes; a subscriber that sees a jump in
``seq`` has missed events.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from pfes.errors import InputError

__all__ = [
    "EVENT_SCHEMA",
    "EVENT_SCHEMAS",
    "STATUS_SCHEMA",
    "INTENSITY_SCHEMA",
    "Event",
    "EventSequencer",
    "event_from_instance",
    "parse_event",
    "topic_for",
]

EVENT_SCHEMA = "pfes.event/2"
EVENT_SCHEMAS = ("pfes.event/1", EVENT_SCHEMA)  # what parse_event accepts
STATUS_SCHEMA = "pfes.status/1"
INTENSITY_SCHEMA = "pfes.intensity/1"

TOPIC_KINDS = ("event", "intensity", "status")


@dataclass(frozen=True)
class Event:
    """One spotted expression instance, as published (field order = JSON key order)."""

    schema: str
    seq: int
    stream: str
    track: int
    kind: str  # "macro" | "micro"
    onset_frame: int
    apex_frame: int
    offset_frame: int
    onset_s: float
    apex_s: float
    offset_s: float
    score: float
    class_prob: float
    emitted_frame: int
    emitted_at: float  # wall clock, Unix seconds
    latency_ms: float
    interrupted: bool = False  # closed early by a loss or gap of its source (schema 2)
    # what moved (optional; empty without the face blendshape model): plain words such as
    # "smile" or "frown, nose wrinkle", and the blendshapes that rose most from rest to apex
    what: str = ""
    moved: tuple[tuple[str, float], ...] = ()
    # {"frame": path, "face": path, "clip": path} with pfes run --snapshots; else None and
    # left out of the JSON
    snapshot: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["snapshot"] is None:
            del d["snapshot"]
        return d

    def to_json(self) -> str:
        """Compact JSON text (one line, no trailing newline)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)


_FIELD_TYPES = {f.name: f.type for f in fields(Event)}
_REQUIRED = [f.name for f in fields(Event) if f.default is MISSING]


def parse_event(data: str | bytes | dict) -> Event:
    """Check and parse one event (JSON text or dict). Raises InputError if malformed."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise InputError(f"event is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise InputError("event must be a JSON object")
    if data.get("schema") not in EVENT_SCHEMAS:
        raise InputError(f"unsupported event schema {data.get('schema')!r}, want {EVENT_SCHEMA!r}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise InputError(f"event lacks fields {missing}")
    if data["kind"] not in ("macro", "micro"):
        raise InputError(f"event kind must be macro or micro, got {data['kind']!r}")
    if not data["onset_frame"] <= data["apex_frame"] <= data["offset_frame"]:
        raise InputError("event frames must satisfy onset <= apex <= offset")
    ev = {k: data[k] for k in _FIELD_TYPES if k in data}
    if "moved" in ev:
        try:
            ev["moved"] = tuple((str(n), float(c)) for n, c in ev["moved"])
        except (TypeError, ValueError) as e:
            raise InputError(f"event 'moved' must be [name, change] pairs: {e}") from e
    return Event(**ev)


class EventSequencer:
    """Hands out gap-free sequence numbers 0, 1, 2, ... (thread-safe)."""

    def __init__(self, start: int = 0):
        self._next = int(start)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            n = self._next
            self._next += 1
            return n

    @property
    def count(self) -> int:
        return self._next


def _finite(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else 0.0


def event_from_instance(
    inst: Any,
    *,
    seq: int,
    stream: str,
    track: int,
    pts_of: Any,
    emitted_frame: int,
    emitted_at: float,
    latency_ms: float,
    interrupted: bool = False,
    what: str = "",
    moved: Any = (),
) -> Event:
    """Build an Event from an ``engine.detector.Instance``.

    pts_of: callable frame -> source time in seconds (the pipeline's per-track timestamps).
    """
    return Event(
        schema=EVENT_SCHEMA,
        seq=int(seq),
        stream=str(stream),
        track=int(track),
        kind=str(inst.kind),
        onset_frame=int(inst.onset),
        apex_frame=int(inst.apex),
        offset_frame=int(inst.offset),
        onset_s=round(_finite(pts_of(inst.onset)), 6),
        apex_s=round(_finite(pts_of(inst.apex)), 6),
        offset_s=round(_finite(pts_of(inst.offset)), 6),
        score=_finite(inst.score),
        class_prob=_finite(inst.class_prob),
        emitted_frame=int(emitted_frame),
        emitted_at=round(float(emitted_at), 6),
        latency_ms=round(_finite(latency_ms), 3),
        interrupted=bool(interrupted),
        what=str(what),
        moved=tuple((str(n), round(_finite(c), 3)) for n, c in moved),
    )


def topic_for(kind: str, stream: str) -> str:
    """``event.<stream>``, ``intensity.<stream>`` or ``status.<stream>``."""
    if kind not in TOPIC_KINDS:
        raise InputError(f"unknown topic kind {kind!r}; choose from {TOPIC_KINDS}")
    return f"{kind}.{stream}"
