"""The accuracy benchmark's helpers: the seed table and the data guard of bench_accuracy.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _eval(f1: float) -> dict:
    return {k: {"f1": f1, "tp": 1, "fp": 0, "n": 1} for k in ("macro", "micro", "overall")}


def test_seed_table_means_and_missing_cells(tmp_path):
    for seed, f1 in ((0, 0.7), (1, 0.8), (2, 0.9)):
        d = tmp_path / f"seed{seed}"
        d.mkdir()
        (d / "hard.eval.json").write_text(json.dumps(_eval(f1)))
    (tmp_path / "seed0" / "gim.eval.json").write_text(json.dumps(_eval(0.5)))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "seed_table.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    hard = next(ln for ln in out.splitlines() if ln.startswith("| `hard`"))
    assert "| 0.700 | 0.800 | 0.900 | **0.800** | 0.100 |" in hard
    gim = next(ln for ln in out.splitlines() if ln.startswith("| `gim`"))
    assert "| 0.500 | - | - | **0.500** |" in gim
    full = next(ln for ln in out.splitlines() if ln.startswith("| `full`"))
    assert full.count("| -") >= 3


def test_seed_table_without_runs_is_an_error(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "seed_table.py"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no seed* directories" in r.stderr


def test_bench_accuracy_refuses_data_of_another_size(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    (train / "annotations.csv").write_text("video,subject,onset,apex,offset,kind,point\n")
    (train / "synth_config.json").write_text(json.dumps(
        {"seed": 101, "subjects": 24, "videos_per_subject": 3}))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_accuracy.py"), "--work",
                        str(tmp_path), "--variants", "hard"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "'subjects': 24" in r.stderr and "'subjects': 72" in r.stderr
    assert "Traceback" not in r.stderr


def test_every_variant_is_a_valid_pfes_train_command():
    import argparse

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_accuracy
    finally:
        sys.path.pop(0)
    from pfes.commands import train

    p = argparse.ArgumentParser(exit_on_error=False)
    train.add_arguments(p)
    assert set(bench_accuracy.DEFAULT_VARIANTS) <= set(bench_accuracy.VARIANTS)
    for name, (_, extra) in bench_accuracy.VARIANTS.items():
        args = p.parse_args(["--data", "d", "--out", "m.pt", *extra])
        assert args.out == "m.pt", name


def test_realpixel_clip_events_are_separate_and_in_range():
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_realpixels import clip_events
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    kinds = set()
    for seed in range(20):
        evs = clip_events(np.random.default_rng(seed), 1200, 30.0)
        assert evs
        last = -1
        for e, typ in evs:
            kinds.add(typ)
            dur = e.offset - e.onset + 1
            assert e.onset > last + 20 and e.onset <= e.apex <= e.offset < 1200 - 15
            assert {"macro": (15, 120), "micro": (6, 15), "blink": (4, 12)}[typ][0] <= dur
            assert dur <= {"macro": (15, 120), "micro": (6, 15), "blink": (4, 12)}[typ][1]
            assert (e.kind == "eye_close") == (typ == "blink")
            last = e.offset
    assert kinds == {"macro", "micro", "blink"}


def test_realpixel_cameras_keep_the_picture_and_change_what_they_say():
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_realpixels import CAMERAS, camera_view
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)
    assert camera_view(frame, "normal", rng) is frame
    small = camera_view(frame, "small", rng)
    assert small.shape == (18, 32, 3) and abs(small.mean() - frame.mean()) < 3
    dim = camera_view(frame, "dim", rng)
    assert dim.dtype == np.uint8 and abs(dim.mean() - 0.35 * frame.mean()) < 2
    assert dim.astype(float).std() > 0.3 * frame.std()  # noisy, not just scaled
    assert np.array_equal(camera_view(frame, "mirror", rng)[:, ::-1], frame)
    assert set(CAMERAS) == {"normal", "small", "dim", "mirror"}
    with pytest.raises(ValueError, match="unknown camera"):
        camera_view(frame, "fisheye", rng)


def test_realpixels_refuses_a_work_folder_rendered_otherwise(tmp_path):
    rel = tmp_path / "release"
    rel.mkdir()
    (rel / "CAS(ME)^2code_final.xlsx").write_bytes(b"")
    (rel / "bench_params.json").write_text(json.dumps(
        {"clips": 8, "seconds": 40.0, "seed": 0, "camera": "normal"}))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_realpixels.py"),
                        "--work", str(tmp_path), "--camera", "dim"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "use another --work" in r.stderr
    assert (rel / "CAS(ME)^2code_final.xlsx").exists()  # nothing was deleted


def _candidate(path: Path, seed: int, sel_f1: float) -> str:
    from engine.checkpoint import save_checkpoint
    from engine.model import ModelConfig, PfesNet

    meta = {"training": {"config": {"seed": seed}, "val_result": {"overall": {"f1": sel_f1}}}}
    save_checkpoint(path, PfesNet(ModelConfig(in_features=4, channels=8, proj_dim=8)), meta)
    return str(path)


def test_default_model_is_picked_by_the_mean_of_both_selection_scores(tmp_path):
    from engine.checkpoint import load_checkpoint

    a = _candidate(tmp_path / "seed0.pt", 0, 0.84)  # better on synthetic selection subjects
    b = _candidate(tmp_path / "seed1.pt", 1, 0.82)  # better on real pixels, and on the mean
    rp = tmp_path / "rp.json"
    rp.write_text(json.dumps({"release": {"clips": 8}, "results": {a: _eval(0.73), b: _eval(0.87)}}))
    out = tmp_path / "default.pt"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "pick_default_model.py"),
                        "--realpixels", str(rp), "--out", str(out), a, b],
                       capture_output=True, text=True, check=True)
    assert "seed1.pt" in r.stdout.splitlines()[2] and "<- chosen" in r.stdout.splitlines()[2]
    bundle = load_checkpoint(out).meta["bundle"]
    assert bundle["chosen_seed"] == 1
    assert [c["score"] for c in bundle["candidates"]] == [0.785, 0.845]
    assert bundle["realpixel_set"]["release"] == {"clips": 8}
    # a candidate the real-pixel run never scored is an error, not a silent pick
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "pick_default_model.py"),
                        "--realpixels", str(rp), "--out", str(tmp_path / "x.pt"), a,
                        str(tmp_path / "other.pt")], capture_output=True, text=True)
    assert r.returncode == 2 and "has no result" in r.stderr and not (tmp_path / "x.pt").exists()


def test_micro_errors_accounts_for_every_micro_expression_and_false_event(tmp_path):
    from training.synth import SynthConfig, generate_dataset

    # micro-rich short videos so the tallies are not all zero
    cfg = SynthConfig(video_length_s=(30.0, 30.0), micro_per_min=(4.0, 4.0))
    generate_dataset(tmp_path / "ds", subjects=2, videos_per_subject=1, seed=4, config=cfg)
    n_micro = sum(ln.split(",")[5] == "micro"
                  for ln in (tmp_path / "ds" / "annotations.csv").read_text().splitlines()[1:])
    assert n_micro >= 2
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "micro_errors.py"), "--data",
                        str(tmp_path / "ds"), "--json", str(tmp_path / "out.json")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "out.json").read_text())["models"]["bundled"]
    assert sum(res["micro_outcomes"].values()) == n_micro
    shipped = res["micro"]["shipped"]
    assert shipped["n"] == n_micro and shipped["tp"] == res["micro_outcomes"]["matched"]
    assert sum(res["false_micro_events"].values()) == shipped["fp"]
    assert res["micro"]["verifier off"]["tp"] >= shipped["tp"]


def test_micro_errors_refuses_a_set_it_cannot_regenerate(tmp_path):
    from training.synth import SynthConfig, generate_dataset

    generate_dataset(tmp_path / "ds", subjects=1, videos_per_subject=1, seed=4,
                     config=SynthConfig(video_length_s=(8.0, 8.0)))
    ann = tmp_path / "ds" / "annotations.csv"
    lines = ann.read_text().splitlines()
    ann.write_text("\n".join(lines + ["s01,s01_01,1,2,3,micro,2"]) + "\n")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "micro_errors.py"), "--data",
                        str(tmp_path / "ds")], capture_output=True, text=True)
    assert r.returncode == 1
    assert "does not give the stored annotations" in r.stderr and "Traceback" not in r.stderr


def test_micro_ceiling_scores_every_event_and_separates_micro_without_fidgets(tmp_path):
    from training.synth import SynthConfig, generate_dataset

    # no fidgets: micro-expressions differ from macro-expressions in duration and strength,
    # so the oracle on exact activations must separate them almost perfectly
    cfg = SynthConfig(video_length_s=(40.0, 40.0), micro_per_min=(4.0, 4.0), fidgets_per_min=(0.0, 0.0))
    generate_dataset(tmp_path / "ds", subjects=2, videos_per_subject=1, seed=5, config=cfg)
    rows = (tmp_path / "ds" / "annotations.csv").read_text().splitlines()[1:]
    n_micro = sum(ln.split(",")[5] == "micro" for ln in rows)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "micro_ceiling.py"), "--data",
                        str(tmp_path / "ds"), "--fit-subjects", "4", "--json", str(tmp_path / "o.json")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "o.json").read_text())
    assert res["test"]["events"] == len(rows) and res["test"]["micro"] == n_micro >= 2
    assert res["test"]["fidgets"] == 0
    for seen in ("activations", "landmark features"):
        for rule in ("duration + peak", "logistic"):
            assert res[seen][rule]["test"]["n"] == n_micro
    assert res["activations"]["duration + peak"]["test"]["f1"] >= 0.9


def test_micro_ceiling_refuses_a_directory_that_is_not_a_synthetic_set(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "micro_ceiling.py"), "--data",
                        str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and "synth_config.json" in r.stderr and "Traceback" not in r.stderr


def test_feature_noise_rebuilds_the_noise_free_face_and_splits_the_noise():
    import dataclasses

    import numpy as np

    from benchmarks.feature_noise import clean_landmarks, measure
    from training.synth import generate_video
    from training.synth_config import SynthConfig

    # with the tracker's error switched off, the posed clean shapes are the landmarks themselves
    quiet = dataclasses.replace(SynthConfig(), jitter_px_at_200px=(0.0, 0.0),
                                shape_noise_iod=(0.0, 0.0), glitches_per_min=(0.0, 0.0),
                                dropouts_per_min=(0.0, 0.0))
    v = generate_video(3, quiet, length_s=10.0, keep_clean=True)
    assert np.allclose(clean_landmarks(v), v.landmarks, atol=1e-3)
    res = measure(2, seed=7, lag=5, length_s=20.0)
    t = res["noise_rms_iod"]
    for fit in ("default", "core"):
        assert 0 < t["no smooth shape noise"][fit] < t["benchmark"][fit]
        assert 0 < t["no per-landmark jitter"][fit] < t["benchmark"][fit]
    m = res["motion_noise_iod"]
    assert 0 < m["no smooth shape noise"]["bias"] < m["benchmark"]["bias"] <= m["benchmark"]["rms"]


def test_matched_filter_snr_gains_from_decorrelating_correlated_noise():
    import numpy as np

    from benchmarks.feature_noise import detectability

    rng = np.random.default_rng(1)
    shared = rng.normal(size=34)  # one error pattern moving every feature together
    noise = [rng.normal(size=(3000, 1)) * shared + 0.1 * rng.normal(size=(3000, 34)) for _ in range(2)]
    sig = shared + rng.normal(size=34)  # partly along the noise, partly not
    snr = detectability([(sig, 0), (sig, 1)], noise, noise, shrink=0.02)
    assert snr["pooled whitening"]["p50"] > 1.3 * snr["standardised"]["p50"]
    assert snr["own noise (oracle)"]["p50"] >= snr["pooled whitening"]["p50"] * 0.99


def test_landmarks_tell_a_linear_oracle_at_least_what_their_region_centroids_do():
    import dataclasses

    import numpy as np

    from benchmarks.feature_noise import detectability, point_level, region_points
    from training.synth import generate_video
    from training.synth_config import SynthConfig

    v = generate_video(11, dataclasses.replace(SynthConfig(), micro_per_min=(6.0, 6.0)),
                       length_s=30.0, keep_clean=True)
    from stream.regions import REGION_NAMES, REGIONS

    lm = np.random.default_rng(0).normal(size=(5, 478, 3))
    reps = region_points(lm)
    pts, cen = reps["region points (210)"], reps["region centroids (34)"]
    assert pts.shape == (5, 210) and cen.shape == (5, 34)
    for r in (0, 16):  # a centroid is the mean x, y of its region's landmarks
        ids = list(REGIONS[REGION_NAMES[r]])
        assert np.allclose(cen[:, 2 * r:2 * r + 2], lm[:, ids, :2].mean(axis=1))
    level = point_level(v, away=60, lag=5, guard=13)
    assert len(level["region points (210)"][0]) >= 2  # micro-expressions to measure
    snr = {name: detectability([(s, 0) for s in sig], [noise], [away], shrink=0.02)
           for name, (sig, noise, away) in level.items()}
    # the centroids are a linear projection of the points: the optimal (oracle) filter on the
    # points can only do as well or better, instance by instance
    for q in ("p10", "p25", "p50"):
        assert snr["region points (210)"]["own noise (oracle)"][q] >= \
            0.999 * snr["region centroids (34)"]["own noise (oracle)"][q]
    assert snr["region centroids (34)"]["own noise (oracle)"]["p50"] > 1.0


def test_feature_noise_rejects_bad_arguments():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "feature_noise.py"), "--videos", "0"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
