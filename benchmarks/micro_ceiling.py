"""How well could anything tell micro-expressions from look-alikes on the synthetic benchmark?

    python benchmarks/micro_ceiling.py --data TEST_DIR [--fit-seed 505 --fit-subjects 96]

An oracle, not a model: it is handed every labelled instance and every unlabelled fidget of
each video as a perfectly segmented event (start and end known, after the fact), and looks at
each event two ways:

* ``activations``: the generator's exact action-unit activations (``SynthVideo.channels``: no
  landmarks, no tracker error, no head motion): the duration, the largest rise of any action
  unit over the event (a fraction of the full FACS magnitude), how many action units rise with
  it, the action unit that rises most and whether it is one-sided;
* ``landmark features``: what the spotter sees (``stream.features`` on the generated
  landmarks, tracker error included): the duration, how far each of the 17 region centroids
  moves from where it was just before the event (IOD), that against the region's median
  frame-to-frame movement over the two seconds before, how many regions move, which moves most.

Two decision rules say "micro" or "not micro" from those:

* ``duration + peak``: micro when the event lasts at most ``d`` frames and its peak rise is
  at least ``p`` (both chosen for the best micro F1 on the fit set);
* ``logistic``: a logistic model over all the event features (one-hot action unit included),
  its threshold chosen the same way.

Both are fitted on a separately generated set (``--fit-seed``, never the set scored) and
scored on ``--data`` (regenerated from its ``synth_config.json`` and checked against its
annotations). The fit set uses ``--data``'s generator settings. With ``activations`` the
micro F1 bounds what any spotter could reach on this content; with ``landmark features``,
what one that sees the spotter's features could reach if it knew where every event starts and
ends. Both are generous: blinks, talking, drift, gaze, glitches and head motion are not among
the events (an oracle sets them aside), and nothing has to be decided causally.

Needs numpy and torch (no MediaPipe). Exit codes: 0 done, 1 bad input
(one line on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.micro_errors import _regenerate  # noqa: E402


def _au_index() -> tuple[list[str], dict[str, tuple[int, int]]]:
    from training.synth import CHANNELS
    from training.synth_aus import AU_NAMES

    aus = [a for a in AU_NAMES if a != "AU43"]  # eye closure is the blink channel
    idx = {a: (CHANNELS.index(f"{a}_r"), CHANNELS.index(f"{a}_l")) for a in aus}
    return aus, idx


def event_features(chan: np.ndarray, s: int, e: int) -> tuple[np.ndarray, int, float]:
    """(features, top action unit index, peak) of the event spanning frames s..e inclusive."""
    aus, idx = _au_index()
    base = max(0, s - 1)
    rise = np.zeros(len(aus))
    one_sided = np.zeros(len(aus))
    for k, a in enumerate(aus):
        r, l_ = chan[s : e + 1, idx[a][0]], chan[s : e + 1, idx[a][1]]
        both = np.maximum(r, l_)
        t = int(np.argmax(both))
        rise[k] = both[t] - max(chan[base, idx[a][0]], chan[base, idx[a][1]])
        one_sided[k] = abs(r[t] - l_[t]) / max(both[t], 1e-6)
    top = int(np.argmax(rise))
    peak = float(max(rise[top], 0.0))
    n_active = float(np.sum(rise > 0.3 * max(peak, 1e-6)))
    dur = float(e - s + 1)
    onehot = np.zeros(len(aus))
    onehot[top] = 1.0
    f = np.r_[dur, dur ** 2 / 100, peak, peak ** 2, dur * peak / 10, n_active,
              one_sided[top], onehot]
    return f, top, peak


def landmark_event_features(feats: np.ndarray, valid: np.ndarray, s: int, e: int
                            ) -> tuple[np.ndarray, int, float]:
    """The same event seen through the spotter's per-frame features (``stream.features``):
    how far each of the 17 region centroids moves from where it was just before the event
    (IOD), against how much it wanders in the two seconds before."""
    disp = feats[:, :34].reshape(len(feats), 17, 2)
    base = max(0, s - 1)
    span = np.arange(s, e + 1)
    span = span[valid[span]]
    if span.size == 0 or not valid[base]:
        rise = np.zeros(17)
    else:
        rise = np.linalg.norm(disp[span] - disp[base], axis=-1).max(axis=0)
    pre = np.arange(max(1, s - 60), s)
    pre = pre[valid[pre] & valid[pre - 1]]
    step = (np.linalg.norm(disp[pre] - disp[pre - 1], axis=-1) if pre.size
            else np.ones((1, 17)) * 1e-3)
    noise = np.median(step, axis=0) + 1e-4
    top = int(np.argmax(rise))
    peak = float(rise[top])
    srt = np.sort(rise)
    onehot = np.zeros(17)
    onehot[top] = 1.0
    dur = float(e - s + 1)
    f = np.r_[dur, dur ** 2 / 100, peak * 10, np.log(peak / noise[top] + 1e-3),
              float(np.sum(rise > 0.5 * max(peak, 1e-6))), srt[-2] / max(peak, 1e-6),
              span.size / dur, onehot]
    return f, top, peak


def events_of(videos: dict, landmarks: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """features (n, d), kind (n,) ("macro", "micro" or "fidget"), duration (n,) in frames and
    peak rise (n,) of every labelled instance and fidget; ``landmarks``: seen through the
    spotter's features instead of the exact activations."""
    from training.infer import video_features

    feats, kind, dur, peak = [], [], [], []
    for v in videos.values():
        spans = [(i.onset, i.offset, i.kind) for i in v.instances]
        spans += [(s, e, "fidget") for s, e in v.fidgets]
        if landmarks:
            x, ok = video_features(v.landmarks, v.valid, v.fps, None)
        for s, e, k in spans:
            if landmarks:
                f, _, p = landmark_event_features(x, ok, s, e)
            else:
                f, _, p = event_features(v.channels, s, e)
            feats.append(f)
            kind.append(k)
            dur.append(e - s + 1)
            peak.append(p)
    return np.array(feats), np.array(kind), np.array(dur, float), np.array(peak)


def f1(pred: np.ndarray, truth: np.ndarray) -> dict:
    """MEGC counts and scores (``training.evaluate``'s) of boolean micro calls, rounded."""
    from training.evaluate import _stats

    r = _stats(int(np.sum(pred & truth)), int(np.sum(pred & ~truth)), int(np.sum(truth)))
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}


def main(argv: list[str] | None = None) -> int:
    from pfes.errors import InputError
    from training.synth import dataset_videos
    from training.synth_config import SynthConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="a `pfes synth` directory to score")
    ap.add_argument("--fit-seed", type=int, default=505, help="seed of the set the rules are fitted on")
    ap.add_argument("--fit-subjects", type=int, default=96)
    ap.add_argument("--json", type=Path, help="also write the result here")
    a = ap.parse_args(argv)
    if a.fit_subjects < 1:
        ap.error("--fit-subjects must be >= 1")
    try:
        test = _regenerate(a.data)
    except InputError as e:
        print(f"micro_ceiling: {e}", file=sys.stderr)
        return 1
    from calibration.instance_classifier import fit_logistic

    meta = json.loads((a.data / "synth_config.json").read_text(encoding="utf-8"))
    cfg = SynthConfig.from_dict(meta["config"])
    fit = {v.name: v for v in dataset_videos(a.fit_subjects, 2, a.fit_seed, cfg)}
    out: dict = {"fit": {"seed": a.fit_seed, "subjects": a.fit_subjects},
                 "test": {"data": str(a.data)}}
    for seen in ("activations", "landmark features"):
        xf, kf, df, pf = events_of(fit, landmarks=seen != "activations")
        xt, kt, dt, pt = events_of(test, landmarks=seen != "activations")
        yf, yt = kf == "micro", kt == "micro"
        out["fit"].update(events=len(yf), micro=int(yf.sum()))
        out["test"].update(events=len(yt), micro=int(yt.sum()), fidgets=int(np.sum(kt == "fidget")))
        res = out[seen] = {}
        # rule 1: duration and peak thresholds
        grid = np.quantile(pf, np.linspace(0, 0.99, 100))
        best = max(((f1((df <= d) & (pf >= p), yf)["f1"], d, float(p))
                    for d in range(3, 31) for p in grid), key=lambda r: r[0])
        _, d, p = best
        res["duration + peak"] = {"max_frames": d, "min_peak": round(p, 4),
                                  "fit": f1((df <= d) & (pf >= p), yf),
                                  "test": f1((dt <= d) & (pt >= p), yt)}
        # rule 2: logistic model over every feature
        w = fit_logistic(xf, yf.astype(float), l2=1e-4, iters=100)
        sf = 1 / (1 + np.exp(-np.clip(xf @ w[:-1] + w[-1], -60, 60)))
        st = 1 / (1 + np.exp(-np.clip(xt @ w[:-1] + w[-1], -60, 60)))
        thr = max(np.arange(0.05, 0.96, 0.05), key=lambda t: f1(sf >= t, yf)["f1"])
        res["logistic"] = {"threshold": round(float(thr), 2), "fit": f1(sf >= thr, yf),
                           "test": f1(st >= thr, yt)}
        if seen == "activations":  # micro-expressions no stronger than most brief fidgets
            brief = pt[(kt == "fidget") & (dt <= 15)]
            res["brief_fidgets"] = int(brief.size)
            res["micro_at_or_below_brief_fidget_p90"] = (
                int(np.sum(pt[yt] <= np.quantile(brief, 0.9))) if brief.size else 0)
        print(f"{seen}: duration + peak micro F1 {res['duration + peak']['test']['f1']:.3f}, "
              f"logistic {res['logistic']['test']['f1']:.3f}", file=sys.stderr)
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
