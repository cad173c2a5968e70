"""Where a model's micro-expression errors come from, on a synthetic set (`pfes synth` output).

    python benchmarks/micro_errors.py --data SYNTH_DIR [--model A.pt ...] [--json OUT]

The set is regenerated in memory from its ``synth_config.json`` (seed, subjects, config), and
checked against the stored annotations, so the generator's unlabelled activity (fidgets,
blinks, talking, tracker glitches, face dropouts) is known frame by frame. Without ``--model``
the bundled model is used. For each model, printed as a table and written as JSON:

* **every labelled micro-expression**, by what became of it: ``matched`` (a micro event with
  IoU >= 0.5); ``called macro`` (the best-overlapping event is macro); ``micro, IoU < 0.5``;
  ``dropped by the verifier`` (an event with the verifier off overlaps it, none with it on);
  ``no run`` (the intensity never reached the open threshold inside the instance: the
  intensity branch missed it); ``no event`` (it did, yet no event overlaps it: the run was too
  short, or part of a run that was dropped);
* **every false micro event** (no labelled micro-expression with IoU >= 0.5), by the first of
  these it overlaps: a labelled instance; a fidget; a blink; talking; a glitch or dropout;
  none of them (drift, gaze, head motion, jitter);
* micro TP / FP / precision / recall / F1 as the model ships and with the verifier off.

Needs numpy and torch (no MediaPipe). Exit codes: 0 done, 1 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MISS_KINDS = ("matched", "called macro", "micro, IoU < 0.5", "dropped by the verifier", "no run",
              "no event")
FALSE_KINDS = ("a labelled instance", "fidget", "blink", "talking", "glitch or dropout",
               "none of them")


def _overlaps(a0: int, a1: int, spans) -> bool:
    return any(e >= a0 and s <= a1 for s, e in spans)


def _regenerate(data: Path) -> dict:
    """name -> SynthVideo, checked against the stored annotations."""
    from pfes.errors import InputError
    from training.synth import annotation_rows, dataset_videos
    from training.synth_config import SynthConfig

    meta_path = data / "synth_config.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path} not found: --data must be a `pfes synth` directory")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    cfg = SynthConfig.from_dict(meta["config"])
    stored = (data / "annotations.csv").read_text(encoding="utf-8").splitlines()[1:]
    videos, rows = {}, []
    for vid in dataset_videos(int(meta["subjects"]), int(meta["videos_per_subject"]),
                              int(meta["seed"]), cfg):
        videos[vid.name] = vid
        rows += [",".join(str(x) for x in r) for r in annotation_rows(vid)]
    if rows != stored:
        raise InputError(f"{data}: regenerating from synth_config.json does not give the stored "
                         "annotations (made by another generator version?)")
    return videos


def analyse(vids, gen: dict, ck, fps: float) -> dict:
    """The two tallies and the micro scores for one checkpoint."""
    import numpy as np

    from engine.detector import detect
    from training.evaluate import iou
    from training.infer import detector_config_of, predict_curves

    cfg = detector_config_of(ck)
    no_verifier = dataclasses.replace(cfg, instance_verifier=())
    miss = dict.fromkeys(MISS_KINDS, 0)
    false = dict.fromkeys(FALSE_KINDS, 0)
    score = {"shipped": [0, 0, 0], "verifier off": [0, 0, 0]}  # tp, fp, n
    for v in vids:
        g = gen[v.name]
        a, ap = predict_curves(ck.net, v.feats, v.valid)
        a = np.asarray(a)
        on_off = {"shipped": detect(a, ap, v.valid, cfg, fps),
                  "verifier off": detect(a, ap, v.valid, no_verifier, fps)}
        micros = [t for t in v.truth if t.kind == "micro"]
        for name, events in on_off.items():
            mic = [e for e in events if e.kind == "micro"]
            tp = sum(any(iou(e.onset, e.offset, t.onset, t.offset) >= 0.5 for t in micros) for e in mic)
            score[name][0] += tp
            score[name][1] += len(mic) - tp
            score[name][2] += len(micros)
        events = on_off["shipped"]
        for t in micros:
            over = [e for e in events if e.offset >= t.onset and e.onset <= t.offset]
            if any(e.kind == "micro" and iou(e.onset, e.offset, t.onset, t.offset) >= 0.5 for e in over):
                kind = "matched"
            elif over:
                best = max(over, key=lambda e: iou(e.onset, e.offset, t.onset, t.offset))
                kind = "called macro" if best.kind == "macro" else "micro, IoU < 0.5"
            elif any(e.offset >= t.onset and e.onset <= t.offset for e in on_off["verifier off"]):
                kind = "dropped by the verifier"
            elif a[t.onset:t.offset + 1].max() < cfg.open_threshold:
                kind = "no run"
            else:
                kind = "no event"
            miss[kind] += 1
        for e in events:
            if e.kind != "micro" or any(iou(e.onset, e.offset, t.onset, t.offset) >= 0.5 for t in micros):
                continue
            if any(t.offset >= e.onset and t.onset <= e.offset for t in v.truth):
                kind = "a labelled instance"
            elif _overlaps(e.onset, e.offset, g.fidgets):
                kind = "fidget"
            elif _overlaps(e.onset, e.offset, g.blinks):
                kind = "blink"
            elif _overlaps(e.onset, e.offset, g.talks):
                kind = "talking"
            elif _overlaps(e.onset, e.offset, g.glitches + g.dropouts):
                kind = "glitch or dropout"
            else:
                kind = "none of them"
            false[kind] += 1
    scores = {}
    for name, (tp, fp, n) in score.items():
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / n if n else 0.0
        scores[name] = {"tp": tp, "fp": fp, "n": n, "precision": round(p, 4), "recall": round(r, 4),
                        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}
    return {"micro_outcomes": miss, "false_micro_events": false, "micro": scores}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="a `pfes synth` dataset directory")
    p.add_argument("--model", action="append", default=None, help="checkpoint (repeatable; default: bundled)")
    p.add_argument("--json", type=Path, default=None, help="write the tallies here")
    args = p.parse_args(argv)

    import torch

    from engine.checkpoint import load_checkpoint
    from pfes.errors import PfesError
    from training.dataset import load_dataset
    from training.prepare import prepare_videos

    torch.set_num_threads(1)
    try:
        gen = _regenerate(args.data)
        ds = load_dataset(args.data)
        vids, fps = prepare_videos(ds, ds.videos)
        models = args.model or [None]
        out = {"data": str(args.data), "models": {}}
        for m in models:
            name = m or "bundled"
            out["models"][name] = res = analyse(vids, gen, load_checkpoint(m), fps)
            n = sum(res["micro_outcomes"].values())
            print(f"{name}: {n} labelled micro-expressions")
            for k, c in res["micro_outcomes"].items():
                print(f"  {k:24s} {c:4d}")
            print(f"  false micro events ({sum(res['false_micro_events'].values())}) on:")
            for k, c in res["false_micro_events"].items():
                print(f"    {k:22s} {c:4d}")
            for k, s in res["micro"].items():
                print(f"  micro {k:12s} TP {s['tp']} FP {s['fp']} of {s['n']}: "
                      f"P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}")
    except PfesError as e:
        print(f"micro_errors: {e}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
