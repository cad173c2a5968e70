"""``pfes dashboard``: a local web page of live intensity curves, events and stream health.

Subscribes to one or more publishers (``pfes run --publish``, or ``pfes proxy``) and serves
the page on loopback; see docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

__all__ = ["HELP", "add_arguments", "main"]

HELP = "serve a live web dashboard of the events, intensity curves and stream health"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from stream.publish import DEFAULT_ENDPOINT

    parser.add_argument(
        "--connect",
        metavar="ENDPOINT",
        action="append",
        default=None,
        help=f"publisher address; repeat for several (default {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1; any other needs --token)",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="HTTP port (default 8080; 0: any free)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help="access token required by every request (default: "
        "$PFES_DASHBOARD_TOKEN); open the page as /?token=...",
    )
    parser.add_argument(
        "--snapshots",
        metavar="DIR",
        action="append",
        default=None,
        help="folder of pfes run --snapshots, whose images the page shows",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds of intensity curve shown (default 60)",
    )


def main(args: argparse.Namespace) -> int:
    from pfes.dashboard.server import DashboardConfig, serve
    from pfes.errors import InputError
    from stream.publish import DEFAULT_ENDPOINT

    dirs = tuple(Path(d) for d in (args.snapshots or []))
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"--snapshots {d}: not a folder")
    cfg = DashboardConfig(
        endpoints=tuple(args.connect or [DEFAULT_ENDPOINT]),
        host=args.host,
        port=args.port,
        token=args.token or os.environ.get("PFES_DASHBOARD_TOKEN") or None,
        snapshot_dirs=dirs,
        window_s=args.window,
    )

    def ready(url: str) -> None:
        print(f"dashboard on {url} (subscribed to {' '.join(cfg.endpoints)})", flush=True)
        if cfg.token:
            print(
                "open it with ?token=<your token> once; the browser keeps a cookie",
                file=sys.stderr,
                flush=True,
            )

    try:
        asyncio.run(serve(cfg, ready))
    except KeyboardInterrupt:
        pass
    return 0
