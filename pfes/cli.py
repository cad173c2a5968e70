"""The ``pfes`` command line: a small registry of subcommands.

Each subcommand is one module in ``pfes/commands`` exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``main(args) -> int``. Only modules that exist are listed, so
``pfes --help`` shows exactly the commands this checkout has. Errors derived from
``PfesError`` become a one-line message on stderr and their documented exit code.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pfes import __version__
from pfes.errors import InputError, PfesError

__all__ = ["main", "COMMANDS", "check_output_file"]

# name -> module; order is the order of `pfes --help`.
COMMANDS: dict[str, str] = {
    "run": "pfes.commands.run",
    "listen": "pfes.commands.listen",
    "dashboard": "pfes.commands.dashboard",
    "keys": "pfes.commands.keys",
    "extract": "pfes.commands.extract",
    "synth": "pfes.commands.synth",
    "convert": "pfes.commands.convert",
    "train": "pfes.commands.train",
    "eval": "pfes.commands.eval",
    "plot": "pfes.commands.plot",
    "crossval": "pfes.commands.crossval",
    "calibrate": "pfes.commands.calibrate",
    "export": "pfes.commands.export",
    "bench": "pfes.commands.bench",
}


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and a one-line message (its default, made explicit).

    Options must be spelled out: with argparse's prefix matching, ``pfes synth --quiet`` would
    silently mean ``--quiet-distractors`` (a dataset without blinks, jitter or head motion).
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"pfes: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def epochs_option(epochs: int | None) -> int:
    """``--epochs`` of train / crossval as TrainConfig takes it (None -> 0: the supervision's
    default); a value below 1 is an InputError (exit 2)."""
    if epochs is None:
        return 0
    if epochs < 1:
        raise InputError(f"--epochs must be >= 1, got {epochs}")
    return epochs


def check_output_file(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail early (InputError, exit 2) if ``path`` cannot be written, before any long work.

    Creates missing parent folders (as the writers do) and probes ``<path>.tmp``, the name the
    atomic writers use, then removes the probe; an existing ``path`` is left untouched.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory; give a file name")
    probe = p.with_name(p.name + ".tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb"):
            pass
        probe.unlink()
    except OSError as e:
        raise InputError(f"cannot write {what} {p}: {e.strerror or e}") from e
    return p


def _available() -> dict[str, str]:
    mods: dict[str, str] = {}
    for name, modname in COMMANDS.items():
        if importlib.util.find_spec(modname) is not None:
            mods[name] = modname
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pfes",
        description="Real-time facial expression spotting (macro / micro) on live video.",
        epilog="Exit codes: 0 ok, 1 internal error, 2 bad usage or input, "
        "3 source unreachable, 4 model problem.",
    )
    parser.add_argument("--version", action="version", version=f"pfes {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in _available().items():
        mod = importlib.import_module(str(modname))
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ModuleNotFoundError as e:  # a broken or partial install: say what is missing
        print(f"pfes: error: a required package is not installed ({e}); run "
              "pfes from the virtual environment that `bash scripts/install.sh` makes (.venv/bin/pfes)",
              file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except PfesError as e:
        print(f"pfes {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"pfes {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
