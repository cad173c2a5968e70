"""``pfes keys --out DIR --name NAME``: make a ZeroMQ CURVE key pair (docs/operations.md).

Writes ``DIR/NAME.key`` (public: give it to the other side) and ``DIR/NAME.key_secret``
(public + secret, mode 0600: keep it). One pair for the publisher (``pfes run
--curve-secret``), one per subscriber (``pfes listen --curve-secret``); the publisher's
``--curve-clients DIR`` holds the subscribers' public ``.key`` files.
"""

from __future__ import annotations

import argparse

__all__ = ["HELP", "add_arguments", "main"]

HELP = "make a CURVE key pair for encrypted, authenticated event publishing"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the key files")
    parser.add_argument(
        "--name",
        default="pfes",
        metavar="NAME",
        help="file name stem: NAME.key and NAME.key_secret (default pfes)",
    )


def main(args: argparse.Namespace) -> int:
    from stream.curve import make_keys

    pub, sec = make_keys(args.out, args.name)
    print(f"public key: {pub}\nsecret key: {sec} (keep it private)")
    return 0
