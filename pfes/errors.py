"""One exception tree for pfes; the CLI maps each class to a documented exit code.

Exit codes (also in README.md):
    0  success
    1  unexpected internal error (a bug: please report it)
    2  bad usage or bad input (missing file, malformed data, wrong shape)
    3  source unreachable (camera, RTSP URL, unreadable video)
    4  model problem (missing, corrupt or incompatible checkpoint)
"""

from __future__ import annotations

__all__ = [
    "PfesError",
    "InputError",
    "SourceError",
    "ModelError",
    "DependencyError",
]


class PfesError(Exception):
    """Base of every error pfes raises on purpose."""

    exit_code = 1


class InputError(PfesError):
    """Bad usage or bad input data."""

    exit_code = 2


class SourceError(PfesError):
    """A video source could not be opened or read."""

    exit_code = 3


class ModelError(PfesError):
    """A checkpoint is missing, corrupt or incompatible with this code."""

    exit_code = 4


class DependencyError(PfesError):
    """An optional dependency is missing; the message says what to install."""

    exit_code = 2
