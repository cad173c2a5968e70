"""Choose a frame source from a user's string: a small registry (file, webcam, RTSP).

Accepted forms (``pfes run SOURCE``)::

    clip.mp4                    a video file (any FFmpeg-readable container)
    webcam  |  webcam:N         local camera N (default 0)
    rtsp://host:port/path       an RTSP camera (also rtsps://)
    NAME=SOURCE                 any of the above with an explicit stream name

Stream names appear in events and ZeroMQ topics, so they are restricted to letters, digits,
``_`` and ``-``; :func:`unique_names` makes the names of several sources distinct.
Anything else is an :class:`~pfes.errors.InputError` with a one-line hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfes.errors import InputError
from stream.frames import Source

__all__ = ["SourceSpec", "parse_source", "open_source", "unique_names", "SOURCE_KINDS"]

_NAME_RE = re.compile(r"^([A-Za-z0-9_-]{1,64})=(.+)$")
_WEBCAM_RE = re.compile(r"^webcam(?::(\d{1,3}))?$")
HINT = "use a video file path, webcam:N or rtsp://HOST[:PORT]/PATH"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source string. kind: "file" | "webcam" | "rtsp"; target: path, index or URL."""

    kind: str
    target: str
    name: str


def _clean_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    return name[:64] or "stream"


def _rtsp_name(url: str) -> str:
    rest = url.split("://", 1)[1]
    rest = rest.rsplit("@", 1)[-1]  # never put credentials in a topic name
    host, _, path = rest.partition("/")
    host = host.split(":")[0]
    path = path.split("?")[0]
    return _clean_name(f"{host}_{path}" if path else host)


def parse_source(spec: str) -> SourceSpec:
    """Parse one source string; raises InputError for anything unsupported."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"empty source; {HINT}")
    spec = spec.strip()
    name = None
    m = _NAME_RE.match(spec)
    if m and not Path(spec).exists():
        name, spec = m.group(1), m.group(2)
    low = spec.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        if len(spec.split("://", 1)[1]) == 0:
            raise InputError(f"RTSP URL has no host: {spec!r}")
        return SourceSpec("rtsp", spec, name or _rtsp_name(spec))
    m = _WEBCAM_RE.match(low)
    if m:
        idx = int(m.group(1) or 0)
        return SourceSpec("webcam", str(idx), name or f"webcam{idx}")
    if low.startswith("webcam"):
        raise InputError(f"bad webcam source {spec!r}; use webcam:N with N a camera number")
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        raise InputError(f"unsupported source scheme {scheme!r} in {spec!r}; {HINT}")
    p = Path(spec)
    if not p.exists():
        raise InputError(f"video file not found: {spec}")
    if not p.is_file():
        raise InputError(f"not a video file: {spec}")
    return SourceSpec("file", str(p), name or _clean_name(p.stem))


def _file(spec: SourceSpec, realtime: bool, **kw: Any) -> Source:
    from stream.source_file import FileSource

    return FileSource(spec.target, realtime=realtime, name=spec.name)


def _webcam(spec: SourceSpec, realtime: bool, **kw: Any) -> Source:
    from stream.source_live import WebcamSource

    return WebcamSource(int(spec.target), name=spec.name, **kw)


def _rtsp(spec: SourceSpec, realtime: bool, **kw: Any) -> Source:
    from stream.source_live import RtspSource

    return RtspSource(spec.target, name=spec.name, **kw)


SOURCE_KINDS: dict[str, Callable[..., Source]] = {"file": _file, "webcam": _webcam, "rtsp": _rtsp}


def open_source(spec: str | SourceSpec, realtime: bool = True, name: str | None = None, **kw: Any) -> Source:
    """Build the source for ``spec`` (not yet opened: use it as a context manager).

    realtime: files play at their frame rate (live sources are always real time).
    Keyword arguments go to live sources (open_timeout_s, read_timeout_s, reconnect, ...).
    """
    s = parse_source(spec) if isinstance(spec, str) else spec
    if name:
        s = SourceSpec(s.kind, s.target, _clean_name(name))
    return SOURCE_KINDS[s.kind](s, realtime, **kw)


def unique_names(specs: list[SourceSpec]) -> list[SourceSpec]:
    """Suffix repeated stream names with -2, -3, ... so every topic is distinct."""
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        n = seen.get(s.name, 0) + 1
        seen[s.name] = n
        out.append(s if n == 1 else SourceSpec(s.kind, s.target, f"{s.name}-{n}"))
    return out
