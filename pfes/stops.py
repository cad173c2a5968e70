"""Stop signals for long-running commands: SIGTERM, SIGHUP and SIGINT all mean "stop cleanly".

``systemctl stop`` and ``docker stop`` send SIGTERM, a closed terminal sends SIGHUP, Ctrl-C
sends SIGINT. Python only turns SIGINT into ``KeyboardInterrupt`` (and not even that when the
process started with SIGINT ignored, as background jobs of a non-interactive shell do), so the
other two would kill the process without flushing the open expressions. Inside
:class:`StopSignals` each of the three raises :class:`StopRequested` (a ``KeyboardInterrupt``)
in the main thread, once, which is the path the pipeline already handles: stop the sources,
flush every open instance, publish it, return the report.

A second SIGINT while stopping raises again (press Ctrl-C twice to abandon the flush); a
repeated SIGTERM or SIGHUP is logged and ignored, so a supervisor that signals twice does not
cut the flush short (it still has SIGKILL).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["StopRequested", "StopSignals", "STOP_SIGNALS"]

log = logging.getLogger(__name__)

STOP_SIGNALS = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGHUP", "SIGINT")) if s is not None
)


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived; ``signame`` says which (``"SIGTERM"``, ...)."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame


class StopSignals:
    """Context manager: while inside, SIGTERM / SIGHUP / SIGINT raise :class:`StopRequested`.

    ``received`` lists the names of the signals seen, in order. After :meth:`disarm` signals
    are only recorded (for the end-of-run summary, which must not be cut short). Outside the
    main thread (where Python cannot install handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.received: list[str] = []
        self._armed = True
        self._previous: dict[int, Any] = {}

    @property
    def signame(self) -> str | None:
        """The first stop signal received, or None."""
        return self.received[0] if self.received else None

    def disarm(self) -> None:
        self._armed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = not self.received
        self.received.append(name)
        if self._armed and (first or signum == signal.SIGINT):
            raise StopRequested(name)
        log.warning("%s received while stopping; still flushing", name)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()
