"""Frames and the frame-source interface every video input implements.

A :class:`Source` is a context manager; iterating it yields :class:`Frame` objects in decode
order. Concrete sources (file, webcam, RTSP) live in ``stream/source_*.py``. A source is used
from one thread: open it, iterate, close it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "Source"]


@dataclass(frozen=True)
class Frame:
    """One decoded video frame.

    index: decoded frame number, counted from 0 per source (dropped frames still count).
    image: (H, W, 3) uint8 RGB.
    pts_s: source presentation time in seconds (from the container, or derived from index/fps).
    arrival_s: ``time.monotonic()`` when the frame became available to the caller.
    """

    index: int
    image: np.ndarray
    pts_s: float
    arrival_s: float


class Source:
    """Base class of frame sources.

    Attributes (valid after ``open()``/``__enter__``):
        name: short stream name used in events and topics.
        fps: nominal frame rate, frames per second.
        size: (W, H) in pixels.
        dropped: number of frames dropped so far (decoded but never yielded).
    """

    name: str = "source"
    fps: float = 0.0
    size: tuple[int, int] = (0, 0)
    dropped: int = 0

    def open(self) -> None:
        """Open the underlying device or file; raise ``SourceError``/``InputError`` on failure."""

    def close(self) -> None:
        """Release the device or file. Safe to call twice."""

    def frames(self) -> Iterator[Frame]:
        """Yield frames in order until the source ends."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
