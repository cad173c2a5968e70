"""``pfes listen``: print the events (and optionally status) a ``pfes run`` publishes.

Reports gaps in ``seq`` (missed events) and publisher restarts; replayed duplicates are
dropped silently. Ctrl-C ends it with a one-line tally; a closed pipe (``pfes listen | head``)
ends it quietly with exit code 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["HELP", "add_arguments", "main"]

HELP = "print the expression events a pfes run publishes (reports missed events)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from stream.publish import DEFAULT_ENDPOINT

    parser.add_argument("--connect", metavar="ENDPOINT", default=DEFAULT_ENDPOINT,
                        help=f"publisher address (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--topics", nargs="+", default=["event"], metavar="TOPIC",
                        help="topic prefixes: event, status, intensity, or e.g. event.cam1 "
                        "(default: event)")
    parser.add_argument("--json", action="store_true", help="print raw JSON bodies")
    parser.add_argument("--count", type=int, default=0, metavar="N",
                        help="exit after N new events (default: run until Ctrl-C)")
    parser.add_argument("--timeout", type=float, default=0.0, metavar="S",
                        help="exit after S seconds without any message (default: never)")
    parser.add_argument("--since", type=int, default=None, metavar="SEQ",
                        help="first replay every event after SEQ from the publisher's journal "
                        "(pfes run --journal), then go on live without a gap")
    parser.add_argument("--journal", metavar="ENDPOINT", default="tcp://127.0.0.1:5557",
                        help="the publisher's journal replay socket (default tcp://127.0.0.1:5557)")
    parser.add_argument("--hwm", type=int, default=1000, metavar="N",
                        help="queue at most N unread messages here (ZeroMQ RCVHWM; default "
                        "1000): a reader that falls further behind loses messages, reported "
                        "as gaps, instead of lagging ever more")
    parser.add_argument("--curve-secret", metavar="FILE", default=None,
                        help="for a publisher that uses CURVE: this client's .key_secret file")
    parser.add_argument("--curve-server", metavar="FILE", default=None,
                        help="for a publisher that uses CURVE: its public .key file")


def _line(kind: str, body: dict) -> str:
    if kind == "event":
        return (f"#{body['seq']} {body['stream']} track {body['track']} {body['kind']} "
                f"frames {body['onset_frame']}-{body['offset_frame']} (apex {body['apex_frame']}) "
                f"{body['onset_s']:.2f}-{body['offset_s']:.2f} s score {body['score']:.2f} "
                f"latency {body['latency_ms']:.1f} ms" + _what(body))
    if kind == "status":
        lat = body.get("latency_ms", {}).get("compute", {})
        return (f"[status] {body.get('stream')} fps {body.get('fps', 0):.1f} frames "
                f"{body.get('frames', 0)} dropped {body.get('dropped', 0)} faces "
                f"{body.get('faces', 0)} events {body.get('events', 0)} "
                f"connected {body.get('connected')} compute p50 {lat.get('p50', 0):.1f} ms"
                + _noise(body))
    return f"[{kind}] {json.dumps(body, separators=(',', ':'))}"


def _what(body: dict) -> str:
    """'  smile (mouthSmileLeft +0.62 mouthSmileRight +0.58)' from an event's what/moved."""
    what = body.get("what") or ""
    try:
        moved = "  ".join(f"{n} {float(c):+.2f}" for n, c in (body.get("moved") or [])[:2])
    except (TypeError, ValueError):
        moved = ""
    return f"  {what or '?'} ({moved})" if (what or moved) else ""
def _safe_line(kind: str, body: dict) -> str:
    try:
        return _line(kind, body)
    except (KeyError, TypeError, ValueError, AttributeError):  # a body without the usual fields
        return f"[{kind}] {json.dumps(body, separators=(',', ':'))}"


def _noise(body: dict) -> str:
    noise = body.get("tracking_noise_iod")
    if noise is None:
        return ""
    return f" tracking noise {noise:.4f}" + (" (NOISY)" if body.get("tracking_noisy") else "")


def main(args: argparse.Namespace) -> int:
    from pfes.errors import InputError
    from stream.subscribe import LagMeter, SeqTracker, Subscriber

    topics = []
    for t in args.topics:
        kind = t.split(".", 1)[0]
        if kind not in ("event", "status", "intensity"):
            raise InputError(f"unknown topic {t!r}; use event, status, intensity or event.<stream>")
        topics.append(t if "." in t else t + ".")
    curve = None
    if args.curve_secret or args.curve_server:
        from stream.curve import load_client

        if not (args.curve_secret and args.curve_server):
            raise InputError("CURVE needs both --curve-secret and --curve-server")
        curve = load_client(args.curve_secret, args.curve_server)
    if args.since is not None and (args.since < -1 or "event." not in topics):
        raise InputError("--since needs a seq >= -1 and the event topic")
    if args.since is not None:
        from stream.publish import check_endpoint

        check_endpoint(args.journal)
    if args.hwm < 1:
        raise InputError(f"--hwm must be >= 1, got {args.hwm}")
    # seq is per publisher across all its streams: gaps only mean something on all events
    check_gaps = "event." in topics
    seq = SeqTracker()
    lag = LagMeter()
    lag_said = 0.0
    new_events = 0
    last_msg = time.monotonic()
    # a second socket, always drained, for the publisher's current seq (the lag)
    lag_sub = Subscriber(args.connect, topics=["status."], curve=curve, rcvhwm=100) \
        if check_gaps else None
    try:
        with Subscriber(args.connect, topics=topics, curve=curve, rcvhwm=args.hwm) as sub:
            print(f"listening on {args.connect} for {' '.join(topics)}", file=sys.stderr)
            # the Clone pattern: subscribed first, then what came before, then live; duplicates
            # (replayed and live, or the publisher's own short replay) are dropped by seq
            backlog = _replay(args, curve, seq) if args.since is not None else iter(())
            while not args.count or new_events < args.count:
                while lag_sub is not None and (st := lag_sub.recv(timeout_s=0)) is not None:
                    lag.publisher(st.body)
                m = next(backlog, None)
                if m is None:
                    m = sub.recv(timeout_s=0.2)
                if m is None:
                    if args.timeout and time.monotonic() - last_msg > args.timeout:
                        break
                    continue
                last_msg = time.monotonic()
                if m.kind == "event":
                    if args.since is not None and int(m.body.get("seq", -1)) <= args.since:
                        continue  # the caller has it already
                    r = seq.feed(m.body)
                    if not r.new:
                        continue
                    if r.restarted:
                        print("publisher restarted (seq began again)", file=sys.stderr)
                    if r.missed and check_gaps:
                        print(f"gap: missed {r.missed} event(s) before #{m.body['seq']}",
                              file=sys.stderr)
                    new_events += 1
                    lag.read(m.body)
                    if lag.behind_events and lag.behind_s > 1.0 and time.monotonic() - lag_said > 5:
                        lag_said = time.monotonic()
                        print(f"lag: {lag.behind_events} event(s) behind the publisher; the "
                              f"newest read was published {lag.behind_s:.1f} s ago",
                              file=sys.stderr)
                print(json.dumps(m.body) if args.json else _safe_line(m.kind, m.body), flush=True)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `pfes listen | head -2`: the reader is gone, nothing to say
        _silence_stdout()
        return 0
    finally:
        if lag_sub is not None:
            lag_sub.close()
    missed = f", {seq.missed} missed" if check_gaps else ""
    print(f"{new_events} events{missed}, {seq.duplicates} duplicates", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace, curve: Any, seq: Any) -> Iterator[Any]:
    """Messages of the events after ``--since`` from the journal."""
    from stream.journal import replay
    from stream.subscribe import Message

    seq.last = args.since  # no gap before the first replayed event
    n = 0
    for body in replay(args.journal, args.since, curve=curve):
        n += 1
        yield Message(topic=f"event.{body.get('stream')}", kind="event",
                      stream=str(body.get("stream")), body=body)
    print(f"replayed {n} event(s) after #{args.since} from {args.journal}", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass
