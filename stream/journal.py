"""The event journal: events on disk, bounded, replayed to subscribers that were away.

:class:`EventJournal` appends each published event as one JSON line to segment files
``events-<first seq>.jsonl`` in a folder; a segment is closed at ``segment_bytes`` and the
oldest segments are deleted once the folder holds more than ``max_bytes`` or a segment's
newest event is older than ``max_age_s``. Lines are written whole (one ``write(2)``, as the
``--events`` file), flushed to the kernel per event; a failing disk is logged and counted,
never raised. A new run continues the numbering of the journal it finds
(:attr:`EventJournal.next_seq`), so ``seq`` stays unique across restarts.

:class:`JournalServer` answers replay requests on a ROUTER socket beside the PUB socket (the
zguide's Clone pattern: subscribe first, then ask for what came before, then drop duplicates
by ``seq``). Request ``[b"since", b"<seq>"]``; reply: up to ``page`` events as
``[b"event", json]``, then ``[b"more", b"<last seq sent>"]`` (ask again from there) or
``[b"end", b"<last seq in the journal>"]``, or ``[b"error", message]``. :func:`replay` is the
client side.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pfes.errors import InputError, SourceError
from stream.publish import check_endpoint, import_zmq

__all__ = ["EventJournal", "JournalServer", "replay", "DEFAULT_JOURNAL_ENDPOINT"]

log = logging.getLogger(__name__)

DEFAULT_JOURNAL_ENDPOINT = "tcp://127.0.0.1:5557"
_PREFIX, _SUFFIX = "events-", ".jsonl"


def _first_seq(p: Path) -> int:
    return int(p.name[len(_PREFIX) : -len(_SUFFIX)])


def _lines(p: Path) -> Iterator[bytes]:
    """Complete lines of a segment (a line still being written is left out)."""
    try:
        data = p.read_bytes()
    except FileNotFoundError:  # pruned meanwhile
        return
    end = data.rfind(b"\n")
    if end >= 0:
        yield from data[: end + 1].splitlines()


class EventJournal:
    """Append-only, size- and age-bounded event log in ``folder`` (see module docstring)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        max_bytes: int = 64 << 20,
        max_age_s: float = 7 * 86400.0,
        segment_bytes: int = 4 << 20,
    ):
        self.folder = Path(folder)
        if max_bytes < 1 or segment_bytes < 1 or not max_age_s > 0:
            raise InputError("journal: max_bytes, segment_bytes and max_age_s must be > 0")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot use journal folder {self.folder}: {e.strerror or e}") from e
        if not os.access(self.folder, os.W_OK):
            raise InputError(f"cannot write to journal folder {self.folder}")
        self.max_bytes, self.max_age_s = int(max_bytes), float(max_age_s)
        self.segment_bytes = int(segment_bytes)
        self._lock = threading.Lock()  # the writer (engine thread) and the server thread
        self._fd: int | None = None
        self._size = 0
        self.failures = 0
        self.error = ""
        self.last_seq = -1
        segs = self.segments()
        if segs:
            for line in _lines(segs[-1]):
                try:
                    self.last_seq = max(self.last_seq, int(json.loads(line)["seq"]))
                except (ValueError, KeyError, TypeError):
                    continue
            if self.last_seq < 0:
                self.last_seq = _first_seq(segs[-1]) - 1

    @property
    def next_seq(self) -> int:
        """Where a new run's numbering starts."""
        return self.last_seq + 1

    def segments(self) -> list[Path]:
        return sorted(self.folder.glob(f"{_PREFIX}*{_SUFFIX}"), key=_first_seq)

    @property
    def oldest_seq(self) -> int:
        segs = self.segments()
        return _first_seq(segs[0]) if segs else self.next_seq

    # -- writing (one thread) ----------------------------------------------------------------
    def append(self, seq: int, data: bytes | str) -> None:
        """Add one event (its JSON); never raises on an I/O failure."""
        line = (data.encode() if isinstance(data, str) else bytes(data)) + b"\n"
        if seq <= self.last_seq:
            log.warning(
                "journal %s: seq %d after %d; not journaled", self.folder, seq, self.last_seq
            )
            return
        with self._lock:
            try:
                if self._fd is None or self._size >= self.segment_bytes:
                    self._rotate(seq)
                if self._fd is None:
                    raise OSError(9, "journal segment not open")
                size = os.fstat(self._fd).st_size
                try:
                    n = os.write(self._fd, line)
                    if n != len(line):
                        raise OSError(28, f"short write ({n} of {len(line)} bytes)")
                except OSError:
                    os.ftruncate(self._fd, size)  # never a partial line
                    raise
                self._size = size + n
                self.last_seq = seq
                if self.error:
                    log.warning("journal %s: writing again", self.folder)
                    self.error = ""
            except OSError as e:
                self.failures += 1
                if not self.error:
                    log.warning(
                        "journal %s: write failed (%s); events go on without it",
                        self.folder,
                        e.strerror or e,
                    )
                self.error = str(e.strerror or e)
                self._close_fd()

    def _rotate(self, seq: int) -> None:
        self._close_fd()
        p = self.folder / f"{_PREFIX}{seq:012d}{_SUFFIX}"
        self._fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._prune(keep=p)

    def _prune(self, keep: Path) -> None:
        segs = [p for p in self.segments() if p != keep]
        now = time.time()
        total = sum(p.stat().st_size for p in segs)
        for p in segs:  # oldest first
            try:
                too_old = now - p.stat().st_mtime > self.max_age_s
                if too_old or total > self.max_bytes - self.segment_bytes:
                    total -= p.stat().st_size
                    p.unlink()
            except FileNotFoundError:
                continue

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close_fd()

    # -- reading (any thread) ----------------------------------------------------------------
    def since(self, seq: int) -> Iterator[bytes]:
        """Events with a seq greater than ``seq``, oldest first (JSON bytes)."""
        segs = self.segments()
        start = 0
        for i, p in enumerate(segs):
            if _first_seq(p) <= seq + 1:
                start = i
        for p in segs[start:]:
            for line in _lines(p):
                try:
                    s = int(json.loads(line)["seq"])
                except (ValueError, KeyError, TypeError):
                    continue
                if s > seq:
                    yield line


class JournalServer:
    """Replay requests on a ROUTER socket, served from its own thread (module docstring).

    context / curve: the publisher's ZeroMQ context and :class:`stream.curve.CurveServer`, so
    the journal is as protected as the events.
    """

    def __init__(
        self,
        journal: EventJournal,
        endpoint: str = DEFAULT_JOURNAL_ENDPOINT,
        context: Any = None,
        curve: Any = None,
        page: int = 500,
    ):
        zmq = import_zmq()
        self._zmq = zmq
        check_endpoint(endpoint)
        self.journal = journal
        self.page = int(page)
        ctx = context or zmq.Context.instance()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            sock.curve_secretkey = curve.secret
            sock.curve_publickey = curve.public
            sock.curve_server = True
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as e:
            sock.close(0)
            raise InputError(f"cannot serve the journal on {endpoint}: {e}") from e
        self.endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._sock = sock
        self._stop = threading.Event()
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, name="journal", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        zmq = self._zmq
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(100):
                    continue
                frames = self._sock.recv_multipart()
                self.requests += 1
                self._answer(frames)
        finally:
            self._sock.close(0)

    def _answer(self, frames: list[bytes]) -> None:
        ident = frames[0]
        send = self._sock.send_multipart
        try:
            if len(frames) != 3 or frames[1] != b"since":
                raise ValueError("want [since, SEQ]")
            seq = int(frames[2])
        except ValueError as e:
            send([ident, b"error", str(e).encode()])
            return
        last = seq
        n = 0
        for line in self.journal.since(seq):
            send([ident, b"event", line])
            last = int(json.loads(line)["seq"])
            n += 1
            if n >= self.page:
                send([ident, b"more", str(last).encode()])
                return
        send([ident, b"end", str(self.journal.last_seq).encode()])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def replay(
    endpoint: str, since: int, curve: Any = None, timeout_s: float = 5.0, context: Any = None
) -> Iterator[dict]:
    """Events after ``since`` from a :class:`JournalServer` (the client side; pages through
    ``more`` replies). Raises SourceError if the server does not answer in ``timeout_s``."""
    zmq = import_zmq()
    check_endpoint(endpoint)
    ctx = context or zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        sock.curve_secretkey = curve.secret
        sock.curve_publickey = curve.public
        sock.curve_serverkey = curve.server_public
    sock.connect(endpoint)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    try:
        cursor = int(since)
        while True:
            sock.send_multipart([b"since", str(cursor).encode()])
            while True:
                if not poller.poll(int(timeout_s * 1000)):
                    raise SourceError(
                        f"no answer from the journal at {endpoint} in {timeout_s:g} s"
                    )
                kind, body = sock.recv_multipart()
                if kind == b"event":
                    yield json.loads(body)
                elif kind == b"more":
                    cursor = int(body)
                    break
                elif kind == b"end":
                    return
                else:
                    raise SourceError(f"journal at {endpoint}: {body.decode(errors='replace')}")
    finally:
        sock.close(0)
