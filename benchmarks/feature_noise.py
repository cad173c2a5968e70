"""How much tracker error reaches the spotter's features, and from which part of it?

    python benchmarks/feature_noise.py [--videos 16] [--seed 1000] [--lag 5] [--json OUT]

For each of ``--videos`` generated 60-s videos (the benchmark's generator, ``SynthConfig``
defaults) the same face is rendered twice: as the tracker reports it (landmark jitter, smooth
shape noise, glitches, dropouts) and noise-free (the generator's clean shapes, posed by the same
head motion and camera). Both go through the spotter's feature extractor (``stream.features``),
and the noise is the difference of the 34 displacement features (region centroid minus neutral,
IOD). What a causal spotter must see through is the noise's change over a few frames, so the
figure is the RMS of its ``--lag``-frame change, per feature, away from glitches and dropouts.

Rows: the benchmark's tracker error, and the same videos with the smooth shape noise or the
per-landmark jitter left out (same seeds: everything else is identical); columns: the default
head-motion fit (``stable_set="default"``) and the ``core`` one. The 30 motion features
(distances moved, >= 0, so noise biases them upwards) get the mean and RMS of their noise. For
scale, the signal: each labelled micro-expression's largest change of a noise-free displacement
feature from the frame before its onset to its apex. Last, how much decorrelating the 34
features could help a linear detector: the matched-filter signal-to-noise ratio of each
micro-expression's change under its video's true noise, for a filter on standardised features,
one decorrelated by the pooled covariance of the changes away from expressions (``pfes train
--input-whitening``), and one decorrelated by the video's own noise (an oracle). And whether
the landmarks themselves would tell more than the region centroids: the same three filters on
the aligned x, y of every landmark the 17 regions are made of (210 numbers) against the 34
centroids computed from those same aligned points (one alignment for both, so only the
averaging differs).

Needs numpy and torch (no MediaPipe). Exit codes: 0 done, 1 bad input (one line on stderr),
2 bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_DISP = 34  # displacement features: 17 regions x (dx, dy)
N_MOTION = 30  # then the motion features: 10 groups x 3 lags, distances moved (>= 0)
VARIANTS = {
    "benchmark": {},
    "no smooth shape noise": {"shape_noise_iod": (0.0, 0.0)},
    "no per-landmark jitter": {"jitter_px_at_200px": (0.0, 0.0)},
}
STABLE_SETS = ("default", "core")


def clean_landmarks(video) -> np.ndarray:
    """The video's noise-free shapes posed exactly as its noisy landmarks were: (T, 478, 3)."""
    from training.synth_face import project, rotation_matrices

    rot = rotation_matrices(video.pose[:, 0], video.pose[:, 1], video.pose[:, 2])
    return project(video.clean, rot, video.scale_px, video.centre_px).astype(np.float32)


def quiet_mask(video, guard: int) -> np.ndarray:
    """Frames at least ``guard`` frames away from a glitch or a dropout (which are not noise)."""
    ok = video.valid.copy()
    for s, e in video.glitches + video.dropouts:
        ok[max(0, s - guard):e + guard + 1] = False
    return ok


def lag_rms(noise: np.ndarray, ok: np.ndarray, lag: int) -> np.ndarray:
    """Per-feature RMS of noise[t] - noise[t - lag] over frames where both are ok: (F,)."""
    d = noise[lag:] - noise[:-lag]
    both = ok[lag:] & ok[:-lag]
    return np.sqrt(np.mean(d[both] ** 2, axis=0))


def micro_vectors(clean_feats: np.ndarray, video) -> list[np.ndarray]:
    """Each labelled micro-expression's noise-free displacement change, frame before onset ->
    apex: (34,) per instance."""
    return [(clean_feats[i.apex, :N_DISP] - clean_feats[max(i.onset - 1, 0), :N_DISP]).astype(np.float64)
            for i in video.instances if i.kind == "micro"]


def micro_signal(clean_feats: np.ndarray, video) -> list[float]:
    """Largest |change| of a noise-free displacement feature, frame before onset -> apex."""
    return [float(np.abs(v).max()) for v in micro_vectors(clean_feats, video)]


def away_changes(feats: np.ndarray, valid: np.ndarray, video, lag: int, away: int) -> np.ndarray:
    """The displacement features' ``lag``-frame changes on valid frames at least ``away`` frames
    from every labelled instance (what a trainer can see of the noise and the distractors)."""
    ok = valid.copy()
    for i in video.instances:
        ok[max(0, i.onset - away):i.offset + away + 1] = False
    both = ok[lag:] & ok[:-lag]
    return (feats[lag:, :N_DISP] - feats[:-lag, :N_DISP]).astype(np.float64)[both]


def detectability(signals: list[tuple[np.ndarray, int]], noise: list[np.ndarray],
                  away: list[np.ndarray], shrink: float) -> dict:
    """Signal-to-noise ratio of a matched linear filter for each micro-expression's change
    (knowing its direction: an upper bound for a linear detector at one lag), under its own
    video's true noise covariance, for filters built three ways: each feature standardised
    (diagonal), decorrelated by the pooled covariance of the changes away from expressions
    (what ``pfes train --input-whitening`` estimates, shrunk alike), decorrelated by the video's
    own noise covariance (an oracle)."""
    pooled = np.cov(np.concatenate(away).T)
    pooled = (1 - shrink) * pooled + shrink * np.diag(np.diag(pooled))
    ways: dict[str, list[float]] = {"standardised": [], "pooled whitening": [], "own noise (oracle)": []}
    for sig, i in signals:
        true = np.cov(noise[i].T)
        for way, cov in (("standardised", np.diag(np.diag(pooled))), ("pooled whitening", pooled),
                         ("own noise (oracle)", true)):
            w = np.linalg.solve(cov, sig)
            ways[way].append(float(w @ sig / np.sqrt(w @ true @ w)))
    return {way: {f"p{q}": float(np.percentile(v, q)) for q in (10, 25, 50)} for way, v in ways.items()
            if v}


def region_points(aligned: np.ndarray) -> dict[str, np.ndarray]:
    """Both representations of aligned landmarks (T, 478, 3): the x, y of every landmark of the
    17 regions (T, 2 Q) and the region centroids made from them (T, 34)."""
    from stream.features import _REGION_M, _REGION_POINTS

    xy = aligned[:, list(_REGION_POINTS), :2]
    return {"region points (210)": xy.reshape(len(aligned), -1),
            "region centroids (34)": np.einsum("rq,tqd->trd", _REGION_M, xy).reshape(len(aligned), -1)}


def point_level(video, away: int, lag: int, guard: int) -> dict[str, tuple[list, np.ndarray, np.ndarray]]:
    """For each representation of ``region_points``: (micro-expression changes, the noise's
    ``lag``-frame changes on quiet frames, the noisy changes away from every instance), with
    noisy and clean landmarks aligned to one reference (the clean face's first frame)."""
    from stream.align import align_landmarks, make_reference

    clean = clean_landmarks(video)
    ref = make_reference(clean[0])
    c_al, n_al = align_landmarks(clean, ref)[0], align_landmarks(video.landmarks, ref)[0]
    ok = quiet_mask(video, guard) & np.isfinite(n_al).all(axis=(1, 2))
    far = ok.copy()
    for i in video.instances:
        far[max(0, i.onset - away):i.offset + away + 1] = False
    both, far2 = ok[lag:] & ok[:-lag], far[lag:] & far[:-lag]
    reps_c, reps_n = region_points(c_al), region_points(n_al)
    out = {}
    for name, c in reps_c.items():
        n = reps_n[name]
        d = n - c
        sig = [c[i.apex] - c[max(i.onset - 1, 0)] for i in video.instances if i.kind == "micro"]
        out[name] = (sig, (d[lag:] - d[:-lag])[both], (n[lag:] - n[:-lag])[far2])
    return out


def measure(n_videos: int, seed: int, lag: int, length_s: float = 60.0) -> dict:
    from stream.features import FeatureConfig, extract_features
    from training.synth import generate_video
    from training.synth_config import SynthConfig
    # the constants of the removed `pfes train --input-whitening`, kept so its numbers stay comparable
    WHITEN_AWAY_S, WHITEN_SHRINK = 2.0, 0.02

    configs = {s: FeatureConfig(stable_set=s) for s in STABLE_SETS}
    sums: dict[str, dict[str, list[np.ndarray]]] = {v: {s: [] for s in STABLE_SETS}
                                                    for v in VARIANTS}
    motion: dict[str, dict[str, list[np.ndarray]]] = {v: {"bias": [], "rms": []} for v in VARIANTS}
    signal: list[float] = []
    vectors: list[tuple[np.ndarray, int]] = []
    noise_changes: list[np.ndarray] = []
    away: list[np.ndarray] = []
    points: dict[str, tuple[list, list, list]] = {}
    guard = max(lag, 12) + 1  # the longest motion lag sees a glitch that long
    for i in range(n_videos):
        # the variants draw the same random numbers, so the face, its head motion and its clean
        # shapes are the same in all three: the noise-free features are computed once per video
        clean_f: dict[str, np.ndarray] = {}
        for variant, override in VARIANTS.items():
            cfg = dataclasses.replace(SynthConfig(), **override)
            video = generate_video(seed + i, cfg, length_s=length_s, keep_clean=True)
            ok = quiet_mask(video, guard)
            if not clean_f:
                clean = clean_landmarks(video)
                every = np.ones(len(clean), bool)
                clean_f = {s: extract_features(clean, every, video.fps, fcfg)[0]
                           for s, fcfg in configs.items()}
                signal += micro_signal(clean_f["default"], video)
                vectors += [(vec, i) for vec in micro_vectors(clean_f["default"], video)]
            for s, fcfg in configs.items():
                noisy_f, noisy_v = extract_features(video.landmarks, video.valid, video.fps, fcfg)
                diff = (noisy_f - clean_f[s]).astype(np.float64)
                sums[variant][s].append(lag_rms(diff[:, :N_DISP], ok & noisy_v, lag))
                if s == "default" and variant == "benchmark":
                    both = (ok & noisy_v)[lag:] & (ok & noisy_v)[:-lag]
                    noise_changes.append((diff[lag:, :N_DISP] - diff[:-lag, :N_DISP])[both])
                    away.append(away_changes(noisy_f, noisy_v, video, lag,
                                             int(round(WHITEN_AWAY_S * video.fps))))
                    level = point_level(video, int(round(WHITEN_AWAY_S * video.fps)), lag, guard)
                    for name, (sig_l, noise_l, away_l) in level.items():
                        sigs, noises, aways = points.setdefault(name, ([], [], []))
                        sigs += [(vec, len(noises)) for vec in sig_l]
                        noises.append(noise_l)
                        aways.append(away_l)
                if s == "default":
                    m = diff[ok & noisy_v, N_DISP:N_DISP + N_MOTION]
                    motion[variant]["bias"].append(m.mean(axis=0))
                    motion[variant]["rms"].append(np.sqrt((m ** 2).mean(axis=0)))
    table = {v: {s: float(np.mean(sums[v][s])) for s in STABLE_SETS} for v in VARIANTS}
    mot = {v: {k: float(np.mean(motion[v][k])) for k in ("bias", "rms")} for v in VARIANTS}
    sig = np.asarray(signal)
    pct = {f"p{q}": float(np.percentile(sig, q)) for q in (10, 25, 50, 75)} if len(sig) else {}
    return {"videos": n_videos, "seed": seed, "lag_frames": lag, "length_s": length_s,
            "noise_rms_iod": table, "motion_noise_iod": mot,
            "micro_signal_iod": {"n": int(len(sig)), **pct},
            "matched_filter_snr": detectability(vectors, noise_changes, away, WHITEN_SHRINK),
            "matched_filter_snr_by_representation": {
                name: detectability(sigs, noises, aways, WHITEN_SHRINK)
                for name, (sigs, noises, aways) in points.items()}}


def render(res: dict) -> str:
    lag = res["lag_frames"]
    lines = [f"feature noise: RMS of its {lag}-frame change, mean over the 34 displacement "
             f"features (IOD x 1000), {res['videos']} videos from seed {res['seed']}",
             f"{'tracker error':26s}" + "".join(f"{s + ' fit':>14s}" for s in STABLE_SETS)]
    for v, row in res["noise_rms_iod"].items():
        lines.append(f"{v:26s}" + "".join(f"{1000 * row[s]:14.2f}" for s in STABLE_SETS))
    lines.append("motion features (distances moved over 2, 5, 12 frames; default fit): noise mean "
                 "(bias) and RMS, IOD x 1000")
    for v, row in res["motion_noise_iod"].items():
        lines.append(f"{v:26s}{1000 * row['bias']:14.2f}{1000 * row['rms']:14.2f}")
    sig = res["micro_signal_iod"]
    if sig.get("n"):
        lines.append(f"micro-expression signal (largest feature change onset -> apex, IOD x 1000,"
                     f" n={sig['n']}): p10 {1000 * sig['p10']:.1f}  p25 {1000 * sig['p25']:.1f}"
                     f"  median {1000 * sig['p50']:.1f}  p75 {1000 * sig['p75']:.1f}")
    snr = res.get("matched_filter_snr")
    if snr:
        lines.append(f"matched-filter SNR of each micro-expression's {lag}-frame change under its "
                     "video's noise (benchmark, default fit), filter built from:")
        for way, q in snr.items():
            lines.append(f"{way:26s}p10 {q['p10']:6.1f}  p25 {q['p25']:6.1f}  median {q['p50']:6.1f}")
    for name, snr in res.get("matched_filter_snr_by_representation", {}).items():
        lines.append(f"the same from {name}, one alignment for both:")
        for way, q in snr.items():
            lines.append(f"{way:26s}p10 {q['p10']:6.1f}  p25 {q['p25']:6.1f}  median {q['p50']:6.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from pfes.errors import InputError

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=16, help="videos to generate (default 16)")
    p.add_argument("--seed", type=int, default=1000, help="seed of the first video (default 1000)")
    p.add_argument("--lag", type=int, default=5, help="frames over which the change is taken "
                   "(default 5, a micro-expression's onset)")
    p.add_argument("--length-s", type=float, default=60.0, help="video length (default 60 s)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    a = p.parse_args(argv)
    try:
        if a.videos < 1 or not 1 <= a.lag <= 30 or not 5.0 <= a.length_s <= 600.0:
            raise InputError("--videos must be >= 1, --lag in [1, 30], --length-s in [5, 600]")
        res = measure(a.videos, a.seed, a.lag, a.length_s)
        print(render(res))
        if a.json:
            a.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    except (InputError, OSError) as e:
        print(f"feature_noise: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
