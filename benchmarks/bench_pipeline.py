"""Live pipeline benchmark: per-stage latency, event latency to a subscriber, concurrency.

    python benchmarks/bench_pipeline.py [--model PATH] [--clip PATH] [--backend torch numpy]
        [--sources 1 2 4] [--seconds 10] [--json OUT]

Parts:

1. ``fast``: the clip (default: the bundled 640x360 demo) processed as fast as possible, real
   MediaPipe, per backend: p50/p99 of every stage (decode, landmarks, features, engine,
   detector, publish) and of the per-frame sum; event latency from the arrival of the closing
   frame to receipt by a real ZeroMQ SUB socket in another thread.
2. ``replay``: the same with the face tracker replaced by a replay of landmarks extracted once
   beforehand, i.e. the pipeline's own cost without the face mesh.
3. ``classify_at``: apex vs close classification, matched against the clip's known expressions.
4. ``compare``: ``fast`` with the numpy backend, before / after the issue-5 hot-path changes,
   alternated (before, after, before, after) so both see the same machine load. "before" =
   PyAV's default colour-conversion threads (one per CPU), ``FaceMesh.process`` with
   protobuf landmark parsing and OpenBLAS's default threads; "after" = one conversion thread,
   the direct graph feed and one OpenBLAS thread.
5. ``live``: N simultaneous 30 fps "cameras" (the clip decoded in real time by a newest-frame
   live source, as a webcam or RTSP camera would deliver it) for ``--seconds``; dropped frames
   and achieved fps per source.

Without ``--model`` the bundled default is used if present, else a small random network whose
detector thresholds are put at the 55th / 80th percentile of its intensity on the clip (so that
events exist to time; their accuracy then means nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from engine.checkpoint import DEFAULT_MODEL_PATH, Checkpoint, load_checkpoint  # noqa: E402
from engine.detector import DetectorConfig  # noqa: E402
from engine.runtime import StreamEngine  # noqa: E402
from pfes.commands.run import DEMO_CLIP, DEMO_TRUTH, _match_truth  # noqa: E402
from stream.features import FeatureExtractor, extract_features  # noqa: E402
from stream.pipeline import Pipeline, PipelineConfig  # noqa: E402
from stream.publish import ZmqPublisher  # noqa: E402
from stream.source_file import FileSource, av_to_rgb  # noqa: E402
from stream.source_live import LiveSource, _av_rgb  # noqa: E402
from stream.subscribe import Subscriber  # noqa: E402
from stream.tracker import make_tracker  # noqa: E402


class FileCamera(LiveSource):
    """A file delivered like a camera: decoded in real time, newest frame only."""

    def __init__(self, path: Path, name: str, loops: int = 100, convert=None):
        super().__init__(name, reconnect=False)
        self.path, self.loops = path, loops
        self.convert = convert or _av_rgb  # default: what stream/source_live.py uses

    def _connect(self):
        import av

        t0 = time.monotonic()
        k = 0
        for _ in range(self.loops):
            with av.open(str(self.path)) as c:
                s = c.streams.video[0]
                self.fps = float(s.average_rate or 30)
                for vf in c.decode(s):
                    if self._stop.is_set():
                        return
                    due = t0 + k / self.fps
                    now = time.monotonic()
                    if due > now:
                        time.sleep(due - now)
                    t = time.perf_counter()
                    self.size = (vf.width, vf.height)
                    yield (vf, self.convert, k / self.fps, time.perf_counter() - t)
                    k += 1


class Receiver(threading.Thread):
    """Real SUB socket in its own thread; arrival->receipt latency per event (ms)."""

    def __init__(self, endpoint: str):
        super().__init__(daemon=True)
        self.sub = Subscriber(endpoint, topics=["event."])
        self.lat: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            m = self.sub.recv(timeout_s=0.05)
            if m is not None:
                b = m.body
                self.lat.append((time.time() - b["emitted_at"]) * 1000.0 + b["latency_ms"])
        self.sub.close()


def _model(path: str | None, clip: Path, lm_cache: dict) -> tuple[Checkpoint, DetectorConfig, str]:
    if path or DEFAULT_MODEL_PATH.is_file():
        ck = load_checkpoint(path)
        d = ck.meta.get("detector")
        return ck, DetectorConfig.from_dict(d) if d else DetectorConfig(), str(ck.path)
    from pipeline_fakes import small_net

    from training.infer import predict_curves

    lm, valid, fps = _landmarks(clip, lm_cache)
    feats, fv = extract_features(lm, valid, fps)
    net = small_net(feats.shape[1], lookahead_frames=0)
    inten, _ = predict_curves(net, feats, fv)
    lo, hi = np.percentile(inten, [55, 80])
    det = DetectorConfig(open_threshold=float(hi), close_threshold=float(lo))
    return Checkpoint(net, {}, Path("random")), det, "random small net (no default.pt yet)"


def _landmarks(clip: Path, cache: dict):
    if "lm" not in cache:
        from stream.extract import extract_landmarks

        s = extract_landmarks(clip, progress=False)
        cache["lm"] = (s.landmarks, s.valid, s.fps)
    return cache["lm"]


def run_once(ck, det, clip, backend, tracker="mediapipe", lm_cache=None, sources=None,
             realtime=False, seconds=None, direct=True, blas_threads=1):
    eng = StreamEngine(ck.net, backend=backend, max_streams=16)
    if tracker == "mediapipe":
        def tf(src):
            return make_tracker("mediapipe", max_faces=1, direct=direct)
    else:
        from pipeline_fakes import LandmarkTracker

        lm, valid, _ = _landmarks(clip, lm_cache)

        def tf(src):
            return LandmarkTracker({0: (lm, valid)})
    srcs = sources or [FileSource(clip, name="demo")]
    with ZmqPublisher("tcp://127.0.0.1:*") as pub:
        rx = Receiver(pub.endpoint)
        rx.start()
        pub.wait_for_subscribers(1, timeout_s=5)
        pipe = Pipeline(srcs, eng, det, tracker_factory=tf,
                        feature_factory=lambda fps: FeatureExtractor(fps), publisher=pub,
                        config=PipelineConfig(realtime=realtime, blas_threads=blas_threads))
        timer = None
        if seconds:
            timer = threading.Timer(seconds, pipe.stop)
            timer.start()
        rep = pipe.run()
        if timer:
            timer.cancel()
        deadline = time.monotonic() + 2
        while len(rx.lat) < len(rep.events) and time.monotonic() < deadline:
            time.sleep(0.01)
        rx.stop.set()
        rx.join()
    return rep, rx.lat


def _compare(ck, det, clip, cache, backend: str, rounds: int = 2) -> dict:
    """Before / after the hot-path changes, alternated; stage p50/p99 per variant and round."""
    import stream.source_file as sf

    stages = ("decode", "landmarks", "features", "engine", "detector", "publish", "compute")
    out: dict = {"before": [], "after": []}
    saved = sf.CONVERT_THREADS
    try:
        for _ in range(rounds):
            for name, conv, direct, blas in (("before", 0, False, None), ("after", 1, True, 1)):
                sf.CONVERT_THREADS = conv
                rep, _ = run_once(ck, det, clip, backend, "mediapipe", cache, direct=direct,
                                  blas_threads=blas)
                row = {st: (rep.stages_ms[st]["p50"], rep.stages_ms[st]["p99"]) for st in stages}
                row["fps"] = rep.streams["demo"]["frames"] / rep.wall_s
                row["loadavg"] = os.getloadavg()[0]
                out[name].append(row)
                cells = "  ".join(f"{st} {row[st][0]:.2f}/{row[st][1]:.2f}" for st in stages)
                print(f"compare {name:<6} {cells}  {row['fps']:.0f} fps  load {row['loadavg']:.1f}")
    finally:
        sf.CONVERT_THREADS = saved
    return out


def _pct(v):
    a = np.asarray(v, float)
    return (float(np.percentile(a, 50)), float(np.percentile(a, 99))) if a.size else (0.0, 0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--clip", default=str(DEMO_CLIP))
    ap.add_argument("--backend", nargs="+", default=["numpy", "torch"])
    ap.add_argument("--sources", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: fast replay classify compare live")
    ap.add_argument("--live-rgb", choices=["source_live", "one-thread"], default="source_live",
                    help="colour conversion of the live part: stream.source_live's (default) "
                    "or stream.source_file.av_to_rgb (one swscale thread)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    clip = Path(args.clip)
    import torch

    torch.set_num_threads(1)  # as pfes run does
    cache: dict = {}
    ck, det, model_name = _model(args.model, clip, cache)
    load = os.getloadavg()
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "machine": f"{os.cpu_count()}-core {platform.machine()} CPU, no GPU",
                 "loadavg_start": load, "model": model_name, "clip": str(clip),
                 "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                       capture_output=True, text=True).stdout.strip()}
    print(f"# {res['date']}  {res['machine']}  load {load[0]:.1f}  model: {model_name}")
    stages = ("decode", "landmarks", "features", "engine", "detector", "publish", "compute")
    for part in ("fast", "replay"):
        if part in args.skip:
            continue
        for b in args.backend:
            rep, lat = run_once(ck, det, clip, b, "mediapipe" if part == "fast" else "replay", cache)
            row = {s: (rep.stages_ms[s]["p50"], rep.stages_ms[s]["p99"]) for s in stages}
            row["event_receipt_ms"] = _pct(lat)
            row["events"] = len(rep.events)
            row["frames"] = rep.streams["demo"]["frames"]
            row["fps"] = row["frames"] / rep.wall_s
            res[f"{part}/{b}"] = row
            cells = "  ".join(f"{s} {row[s][0]:.2f}/{row[s][1]:.2f}" for s in stages)
            print(f"{part:<7}{b:<6} {cells}  events {row['events']} receipt p50/p99 "
                  f"{row['event_receipt_ms'][0]:.2f}/{row['event_receipt_ms'][1]:.2f} ms  "
                  f"{row['fps']:.0f} fps")
    if "classify" not in args.skip and DEMO_TRUTH.is_file() and clip == DEMO_CLIP:
        truth = json.loads(DEMO_TRUTH.read_text())["events"]
        for where in ("apex", "close"):
            d2 = DetectorConfig.from_dict({**det.to_dict(), "classify_at": where})
            rep, _ = run_once(ck, d2, clip, args.backend[0], "replay", cache)
            m = _match_truth(rep.events, truth)
            res[f"classify_at/{where}"] = m
            print(f"classify_at {where}: tp {m['tp']} fp {m['fp']} of n {m['n']}")
    if "compare" not in args.skip:
        res["compare"] = _compare(ck, det, clip, cache, args.backend[0])
    if "live" not in args.skip:
        for n in args.sources:
            conv = av_to_rgb if args.live_rgb == "one-thread" else None
            srcs = [FileCamera(clip, f"cam{i}", convert=conv) for i in range(n)]
            rep, lat = run_once(ck, det, clip, args.backend[0], "mediapipe", cache, sources=srcs,
                                realtime=True, seconds=args.seconds)
            per = {k: v for k, v in rep.streams.items()}
            fps = [v["frames"] / rep.wall_s for v in per.values()]
            drops = [v["dropped"] for v in per.values()]
            res[f"live/{n}"] = {"fps": fps, "dropped": drops, "wall_s": rep.wall_s,
                                "frames": [v["frames"] for v in per.values()],
                                "events": len(rep.events),
                                "compute": (rep.stages_ms["compute"]["p50"],
                                            rep.stages_ms["compute"]["p99"]),
                                "landmarks": (rep.stages_ms["landmarks"]["p50"],
                                              rep.stages_ms["landmarks"]["p99"]),
                                "event_receipt_ms": _pct(lat)}
            print(f"live {n} x 30 fps: fps {[round(f, 1) for f in fps]} dropped {drops} "
                  f"compute p50/p99 {res[f'live/{n}']['compute'][0]:.1f}/"
                  f"{res[f'live/{n}']['compute'][1]:.1f} ms")
    res["live_rgb"] = args.live_rgb
    res["loadavg_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
