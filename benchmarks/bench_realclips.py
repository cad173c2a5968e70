"""Real-face benchmark: the spotter on real videos annotated by eye, with and without the
real-face stage, and what the stage costs per frame on the bundled clip.

    python benchmarks/bench_realclips.py [--videos ../shared/realclips] [--model PATH]
        [--runs 4] [--json OUT] [--write-results benchmarks/RESULTS.md]

1. ``accuracy``: ``pfes eval --videos`` twice (network alone; network + real-face stage):
   recall and precision of the clear expressions at IoU >= 0.5 (class-aware and
   class-agnostic), events in neutral spans, false events per minute of talking, per clip.
2. ``compute``: ``pfes run --fast --stats`` on the bundled clip, alternating with and without
   the stage (``--runs`` each, so both see the same machine load): p50 of decode, landmarks
   and the per-frame total; the ratio total / (decode + landmarks) per run, then its median.

``--write-results`` replaces the section between the markers ``<!-- realclips:begin -->`` and
``<!-- realclips:end -->`` of the given markdown file (appended if absent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- realclips:begin -->", "<!-- realclips:end -->"


def accuracy(videos: str, model: str | None, cache: str) -> dict:
    from training.realeval import evaluate_real_videos

    out = {}
    for name, rf in (("network alone", False), ("network + real-face stage", True)):
        res, _ = evaluate_real_videos(videos, model, real_face=rf, cache_dir=cache,
                                      progress=lambda m: print(f"  {m}", file=sys.stderr))
        out[name] = res
    return out


def _stats(args: list[str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "pfes", "run", "--fast", "--publish", "off", "--stats", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"bench_realclips: pfes run failed: {p.stderr.strip().splitlines()[-1:]}")
    row = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^(decode|landmarks|features|engine|detector|compute)\s+([\d.]+)", line)
        if m:
            row[m.group(1)] = float(m.group(2))
    found = re.search(r"found (\d+) of (\d+) known expressions.*?(\d+) false alarms", p.stdout)
    if found:
        row["demo_found"], row["demo_known"], row["demo_false"] = map(float, found.groups())
    return row


def compute(runs: int) -> dict:
    rows: dict[str, list[dict]] = {"with": [], "without": []}
    for k in range(runs):
        for name, extra in (("with", []), ("without", ["--no-real-face"])):
            rows[name].append(_stats(extra))
            print(f"  compute run {k + 1}/{runs} {name}: {rows[name][-1]}", file=sys.stderr)
    out = {}
    for name, rs in rows.items():
        ratio = [r["compute"] / (r["decode"] + r["landmarks"]) for r in rs]
        out[name] = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        out[name]["ratio"] = statistics.median(ratio)
    return out


def table(acc: dict, comp: dict | None, cmd: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [BEGIN, "", "### Real faces (`../shared/realclips`, annotated by eye)", "",
             f"{now}, {platform.machine()} {platform.system()} CPU VM, "
             f"command: `{cmd}`.", "",
             "| spotter | clear found (any kind) | recall | precision | class-aware recall | "
             "events in neutral spans | false events / min of talking |",
             "|---|---|---|---|---|---|---|"]
    for name, r in acc.items():
        a = r["any"]
        lines.append(f"| {name} | {a['tp']} / {a['n']} | {a['recall']:.2f} | {a['precision']:.2f} | "
                     f"{r['overall']['recall']:.2f} | {r['neutral_events']} | "
                     f"{r['talking_false_events']} in {r['talking_s']:.0f} s = "
                     f"{r['talking_false_per_min']:.1f} |")
    last = list(acc.values())[-1]
    lines += ["", "Per clip (real-face stage): found / false / false in talking", "",
              "| clip | clear | found | false | in talking |", "|---|---|---|---|---|"]
    for c in last["clips"]:
        lines.append(f"| {c['video']} | {c['clear']} | {c['found']} | {c['false']} | "
                     f"{c['talking_false']} |")
    if comp:
        lines += ["", "Per-frame compute on the bundled clip (`pfes run --fast --stats`, "
                  "alternated, medians of the runs):", "",
                  "| | decode p50 ms | landmarks p50 ms | per-frame total p50 ms | "
                  "total / (decode + landmarks) | demo clip found |", "|---|---|---|---|---|---|"]
        for name, c in comp.items():
            lines.append(f"| {name} real-face stage | {c['decode']:.2f} | {c['landmarks']:.2f} | "
                         f"{c['compute']:.2f} | {c['ratio']:.2f} | "
                         f"{c.get('demo_found', 0):.0f} of {c.get('demo_known', 0):.0f}, "
                         f"{c.get('demo_false', 0):.0f} false |")
    lines += ["", END]
    return "\n".join(lines)


def plot_clip(videos: str, clip: str, model: str | None, cache: str, out: str) -> None:
    """What the spotter sees on one clip: network intensity, the expression groups' evidence,
    the annotations and the events, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from engine.checkpoint import load_checkpoint
    from stream.blendshapes import load_blendshape_model
    from stream.expression import GROUP_NAMES, blendshapes_per_frame, expression_evidence
    from stream.extract import extract_landmarks
    from training.infer import predict_curves, predict_instances_real_face, video_features
    from training.realeval import cached_landmarks, load_real_folder

    truth = load_real_folder(videos)[clip]
    s = cached_landmarks(truth.path, Path(cache), lambda p: extract_landmarks(p))
    ck = load_checkpoint(model)
    feats, valid = video_features(s.landmarks, s.valid, s.fps, ck.meta.get("feature_spec"))
    inten, _ = predict_curves(ck.net, feats, valid)
    bsm = load_blendshape_model()
    ev = expression_evidence(blendshapes_per_frame(bsm, s.landmarks, s.valid), s.valid, s.fps)
    insts = predict_instances_real_face(ck, s.landmarks, s.valid, s.fps, bsm)
    t = np.arange(len(inten)) / s.fps
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    for sp in truth.spans:
        ax.axvspan(sp.start / s.fps, sp.end / s.fps, ymin=0.0, ymax=0.04,
                   color="#bbbbbb" if sp.label == "talking" else "#88cc88", lw=0)
    for g in truth.clear + truth.unsure:
        ax.axvspan(g.onset / s.fps, g.offset / s.fps, color="#ffd27f", alpha=0.45, lw=0)
    ax.plot(t, inten, color="#999999", lw=1, label="network intensity (landmarks)")
    for k, name in enumerate(GROUP_NAMES):
        if ev[:, k].max() > 0.05:
            ax.plot(t, ev[:, k], lw=1.6, label=f"evidence: {name}")
    for i in insts:
        ax.annotate("", xy=(i.offset / s.fps, 1.02), xytext=(i.onset / s.fps, 1.02),
                    arrowprops={"arrowstyle": "|-|", "color": "#cc3333", "lw": 1.5})
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("s  (orange: annotated expressions; red bars: events; grey strip: talking)")
    ax.set_title(f"{clip}: what the spotter sees")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=4, frameon=False)
    fig.tight_layout()
    fig.savefig(out)


def write_results(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", default=str(ROOT.parent / "shared" / "realclips"))
    p.add_argument("--model", default=None)
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "pfes" / "landmarks"))
    p.add_argument("--runs", type=int, default=4, help="compute runs each way (0: skip)")
    p.add_argument("--json", default=None)
    p.add_argument("--write-results", default=None, metavar="MD")
    p.add_argument("--plot", nargs=2, metavar=("CLIP", "PNG"), default=None,
                   help="only draw what the spotter sees on one clip")
    a = p.parse_args()
    if not Path(a.videos).is_dir():
        print(f"bench_realclips: {a.videos} is not a directory", file=sys.stderr)
        return 2
    if a.plot:
        plot_clip(a.videos, a.plot[0], a.model, a.cache, a.plot[1])
        return 0
    acc = accuracy(a.videos, a.model, a.cache)
    comp = compute(a.runs) if a.runs > 0 else None
    cmd = "python benchmarks/bench_realclips.py " + " ".join(sys.argv[1:])
    text = table(acc, comp, cmd.strip())
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"accuracy": acc, "compute": comp}, indent=2) + "\n")
    if a.write_results:
        write_results(Path(a.write_results), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
