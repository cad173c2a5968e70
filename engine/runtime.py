"""Streams joining and leaving one batched network: the slot manager.

:class:`StreamEngine` hands out *slots* (one per live stream, e.g. one per tracked face),
keeps how many frames each slot has pushed, and steps any subset of slots in one batched
backend call. Per-layer state lives in the backend, indexed by slot; a slot freed by
:meth:`close_slot` is zeroed and reused by the next :meth:`open_slot`.

Latency contract: the network has ``D = lookahead_frames`` frames of look-ahead, so the
outputs a step returns belong to the frame pushed ``D`` steps earlier on that slot
(``frame_delay = D``). During a slot's first ``D`` steps there is no such frame and ``ready``
is False. :meth:`flush` pushes ``D`` invalid zero frames to release the last ``D`` outputs.

Verbs (as for every streaming part): ``step`` (push one frame per listed slot and get back
what is final for each), ``flush(slot)`` (end of a stream), ``reset(slot)`` (new track in the
same slot). Nothing returned is ever revised.

Example::

    eng = StreamEngine(net, backend="numpy", max_streams=8)
    a = eng.open_slot()
    res = eng.step([a], x[None], np.array([True]))
    if res.ready[0]:
        use(frame=res.frame[0], intensity=res.intensity[0], apex=res.apex[0])
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.backends import Backend, create_backend
from engine.model import PfesNet
from pfes.errors import InputError

__all__ = ["StepResult", "StreamEngine"]


@dataclass
class StepResult:
    """Outputs of one step, one row per listed slot (in the order given).

    ``intensity (n,) float32`` in [0, 1]; ``apex (n, 2) float32`` (macro, micro sigmoids);
    ``ready (n,) bool`` False where the slot has no frame to report yet; ``frame (n,) int64``
    the 0-based frame index (per slot) the row belongs to, -1 where not ready;
    ``frame_delay`` = D, steps between pushing a frame and getting its output.
    """

    intensity: np.ndarray
    apex: np.ndarray
    ready: np.ndarray
    frame: np.ndarray
    frame_delay: int

    def __len__(self) -> int:
        return len(self.intensity)


class StreamEngine:
    """Slot manager over one backend; see the module docstring.

    ``net`` is copied by the backend (later changes to it are not seen). ``backend`` is a
    name from :data:`engine.backends.BACKENDS` (or an already built
    :class:`engine.backends.Backend` with ``max_streams`` slots); ``max_streams`` bounds the
    open slots; ``device`` is ``"cpu"`` or a CUDA device for GPU backends.
    """

    def __init__(
        self, net: PfesNet, backend: str | Backend = "torch", max_streams: int = 64,
        device: str = "cpu",
    ):
        self.net = net
        if isinstance(backend, Backend):
            if backend.max_streams != max_streams:
                raise InputError("the backend was built for a different max_streams")
            self.backend = backend
        else:
            self.backend = create_backend(backend, net, max_streams, device)
        self.backend_name = self.backend.name
        self.max_streams = int(max_streams)
        self.lookahead_frames = int(net.cfg.lookahead_frames)
        self.in_features = int(net.cfg.in_features)
        self._pushed = np.zeros(self.max_streams, dtype=np.int64)  # frames pushed per slot
        self._open = np.zeros(self.max_streams, dtype=bool)
        self._mark = np.zeros(self.max_streams, dtype=bool)
        self._free: list[int] = list(range(self.max_streams))  # a heap: lowest slot first

    # -- slots --------------------------------------------------------------------------
    @property
    def open_slots(self) -> list[int]:
        return [int(s) for s in np.flatnonzero(self._open)]

    def open_slot(self) -> int:
        """A new stream joins: returns a free slot (lowest first) with zero state."""
        if not self._free:
            raise InputError(f"all {self.max_streams} stream slots are in use")
        slot = heapq.heappop(self._free)
        self._open[slot] = True
        self._zero(slot)
        return slot

    def close_slot(self, slot: int) -> None:
        """The stream leaves; its slot is freed (pending outputs are dropped: flush first)."""
        self._check_open([slot])
        self._open[slot] = False
        self._zero(slot)
        heapq.heappush(self._free, int(slot))

    def reset(self, slot: int) -> None:
        """Forget the slot's history (a new track in the same slot); it stays open."""
        self._check_open([slot])
        self._zero(slot)

    def _zero(self, slot: int) -> None:
        self.backend.reset(np.array([slot], dtype=np.int64))
        self._pushed[slot] = 0

    def _check_open(self, slots: Sequence[int] | np.ndarray) -> None:
        idx = np.asarray(slots, dtype=np.int64).reshape(-1)
        bad = (idx < 0) | (idx >= self.max_streams)
        if bad.any() or not self._open[idx].all():
            first = idx[bad][0] if bad.any() else idx[~self._open[idx]][0]
            raise InputError(f"stream slot {first} is not open")

    # -- stepping -----------------------------------------------------------------------
    def step(self, slots: Sequence[int], x: np.ndarray, valid: np.ndarray) -> StepResult:
        """One frame for each listed slot, in one batched backend call.

        ``slots``: n distinct open slots; ``x: (n, F) float32``; ``valid: (n,) bool``.
        Returns a :class:`StepResult` with n rows, in the order of ``slots``.
        """
        idx = np.asarray(slots, dtype=np.int64).reshape(-1)
        n = len(idx)
        x = np.ascontiguousarray(x, dtype=np.float32)
        valid = np.asarray(valid, dtype=bool).reshape(-1)
        if x.shape != (n, self.in_features) or valid.shape != (n,):
            raise InputError(
                f"step needs x of shape ({n}, {self.in_features}) and valid of shape ({n},), "
                f"got {x.shape} and {valid.shape}"
            )
        if n == 0:
            return StepResult(
                np.zeros(0, np.float32), np.zeros((0, 2), np.float32), np.zeros(0, bool),
                np.zeros(0, np.int64), self.lookahead_frames,
            )
        if n == 1:
            s = int(idx[0])
            if not (0 <= s < self.max_streams and self._open[s]):
                raise InputError(f"stream slot {s} is not open")
        else:
            self._check_open(idx)
        if n > 1:  # duplicates collapse when marked: cheaper than np.unique for large n
            self._mark[:] = False
            self._mark[idx] = True
            if int(np.count_nonzero(self._mark)) != n:
                raise InputError("a slot is listed twice in one step")
        inten, apex = self.backend.step(idx, x, valid)
        frame = self._pushed[idx] - self.lookahead_frames
        self._pushed[idx] += 1
        ready = frame >= 0
        if self.lookahead_frames:
            frame[~ready] = -1
        return StepResult(inten, apex, ready, frame, self.lookahead_frames)

    def flush(self, slot: int) -> StepResult:
        """End of the slot's stream: push D invalid zero frames, return the D pending outputs.

        Rows are in frame order; ``ready`` is False for rows with no real frame (a stream
        shorter than D). The slot is then reset (zero state) and stays open.
        """
        self._check_open([slot])
        d = self.lookahead_frames
        inten = np.zeros(d, np.float32)
        apex = np.zeros((d, 2), np.float32)
        ready = np.zeros(d, bool)
        frame = np.full(d, -1, np.int64)
        x = np.zeros((1, self.in_features), np.float32)
        v = np.zeros(1, bool)
        for i in range(d):
            r = self.step([slot], x, v)
            inten[i], apex[i], ready[i], frame[i] = r.intensity[0], r.apex[0], r.ready[0], r.frame[0]
        self._zero(slot)
        return StepResult(inten, apex, ready, frame, d)
