"""The ``--events`` JSONL file: whole lines only, and a failing disk never stops the spotter.

:class:`EventWriter` appends one JSON line per event. What it promises:

* **whole lines**: each line goes to the file in one ``write(2)`` on an ``O_APPEND``
  descriptor; if the kernel takes only part of it (a disk filling up, a file size limit) or
  the write fails, the file is cut back to its last complete line, so a reader never sees a
  partial JSON line, not even after a crash;
* **durability (fsync policy)**: every line is handed to the kernel as soon as the event is
  emitted (it survives a crash or kill of pfes); ``fsync`` runs at most once per ``fsync_s``
  (default 1 s) when a line is written, and at :meth:`close`, so a power loss costs at most
  the last ``fsync_s`` of events. ``fsync_s=0`` syncs every line;
* **failures are reported, kept and retried, never raised**: a write that fails (``ENOSPC``,
  ``EIO``, the folder or file removed) keeps the event in a bounded memory queue
  (``max_pending``; beyond it the oldest are dropped and counted in ``lost``), logs one warning,
  and sets :attr:`error`; writing is retried on the next event and on :meth:`poll` (the
  pipeline calls it with each status heartbeat) at most every ``retry_s``. A file that was
  removed (or whose folder was) is noticed on the next event or poll and created again once
  possible. :meth:`status` is what the ``status.<stream>`` heartbeat carries as ``events_file``.

``"-"`` writes to stdout (a closed stdout is a failure like any other).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from pfes.errors import InputError

__all__ = ["EventWriter"]

log = logging.getLogger(__name__)


class EventWriter:
    """Append events as JSON lines to ``path`` (``"-"``: stdout); see the module docstring.

    fsync_s: at most this long between fsyncs of written lines (0: every line).
    retry_s: at most one retry of a failed file per this many seconds.
    max_pending: events kept in memory while the file fails (oldest dropped beyond).
    """

    def __init__(
        self,
        path: str | Path,
        fsync_s: float = 1.0,
        retry_s: float = 1.0,
        max_pending: int = 10_000,
    ):
        self.path = str(path)
        self.fsync_s = float(fsync_s)
        self.retry_s = float(retry_s)
        self._own = self.path != "-"
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        if self._own:
            p = Path(self.path)
            if p.parent and not p.parent.exists():
                raise InputError(f"cannot write events to {p}: folder {p.parent} does not exist")
            if p.is_dir():
                raise InputError(f"cannot write events to {p}: it is a folder")
            try:
                self._open(truncate=True)
            except OSError as e:
                raise InputError(f"cannot write events to {p}: {e.strerror}") from e
        self._pending: deque[bytes] = deque(maxlen=max(1, int(max_pending)))
        self.written = 0
        self.failures = 0  # failed write attempts
        self.lost = 0  # events dropped from a full pending queue
        self.error = ""  # the current failure ("" while writing works)
        self._last_fsync = time.monotonic()
        self._dirty = False
        self._next_retry = 0.0
        self._closed = False

    # -- file handling ---------------------------------------------------------------------
    def _open(self, truncate: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        fd = os.open(self.path, flags, 0o644)
        st = os.fstat(fd)
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _check_file(self) -> None:
        """Reopen (append) if the file was removed or replaced since it was opened."""
        if not self._own:
            return
        try:
            st = os.stat(self.path)
            same = self._fd is not None and (st.st_dev, st.st_ino) == self._ino
        except OSError:
            same = False
        if not same:
            self._close_fd()
            try:
                self._open(truncate=False)
            except OSError as e:
                raise OSError(e.errno, f"{e.strerror} (the file or its folder was removed?)") from e

    def _write_line(self, data: bytes) -> None:
        if not self._own:
            sys.stdout.write(data.decode())
            sys.stdout.flush()
            return
        fd = self._fd
        if fd is None:
            raise OSError(errno.EBADF, "events file not open")
        size = os.fstat(fd).st_size  # O_APPEND: the line goes at the end
        try:
            n = os.write(fd, data)
            if n != len(data):
                raise OSError(errno.ENOSPC, f"short write ({n} of {len(data)} bytes)")
        except OSError:
            try:  # no partial line: cut back to the last whole line
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
        self._dirty = True
        now = time.monotonic()
        if now - self._last_fsync >= self.fsync_s:
            self._fsync(now)

    def _fsync(self, now: float) -> None:
        if self._fd is not None and self._dirty:
            try:
                os.fsync(self._fd)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EROFS):  # not syncable (a pipe, /dev/...)
                    raise
            self._dirty = False
        self._last_fsync = now

    def _drain(self) -> None:
        """Write pending lines in order; on failure keep the rest and record the error."""
        try:
            self._check_file()
            while self._pending:
                self._write_line(self._pending[0])
                self._pending.popleft()
                self.written += 1
        except (OSError, ValueError) as e:  # ValueError: stdout closed
            self.failures += 1
            self._next_retry = time.monotonic() + self.retry_s
            msg = getattr(e, "strerror", None) or str(e)
            if not self.error:
                log.warning(
                    "events file %s: write failed (%s); keeping events in memory "
                    "(up to %d) and retrying",
                    self.path,
                    msg,
                    self._pending.maxlen,
                )
            self.error = msg
            return
        if self.error:
            log.warning("events file %s: writing again (%d lost)", self.path, self.lost)
            self.error = ""

    # -- public ----------------------------------------------------------------------------
    def write(self, event: Any) -> None:
        """Queue one event and write what is pending (never raises on an I/O failure)."""
        if self._closed:
            raise RuntimeError("event writer is closed")
        text = event.to_json() if hasattr(event, "to_json") else json.dumps(event)
        if len(self._pending) == self._pending.maxlen:
            self.lost += 1
        self._pending.append((text + "\n").encode())
        if not self.error or time.monotonic() >= self._next_retry:
            self._drain()

    def poll(self) -> None:
        """Housekeeping (heartbeat): retry a failed file, notice a removed one, fsync."""
        if self._closed:
            return
        if self.error:
            if time.monotonic() >= self._next_retry:
                self._drain()
            return
        try:
            self._check_file()
            self._fsync(time.monotonic())
        except OSError as e:
            self.failures += 1
            self._next_retry = time.monotonic() + self.retry_s
            if not self.error:
                log.warning("events file %s: %s; retrying", self.path, e.strerror or e)
            self.error = e.strerror or str(e)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def status(self) -> dict:
        """``events_file`` of the status heartbeat."""
        return {
            "path": self.path,
            "ok": not self.error,
            "error": self.error,
            "written": self.written,
            "pending": len(self._pending),
            "failures": self.failures,
            "lost": self.lost,
        }

    def close(self) -> None:
        """Last try at what is pending, fsync, close. Whatever is still pending is lost
        (``pending`` says how many)."""
        if self._closed:
            return
        if self._pending:
            self._drain()
        try:
            self._fsync(time.monotonic())
        except OSError:
            pass
        self._closed = True
        self._close_fd()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
