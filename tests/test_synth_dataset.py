"""Dataset directory: format, byte-for-byte determinism, statistics and the `pfes synth` CLI."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from pfes.cli import main as cli_main
from pfes.errors import InputError
from training.synth import SynthConfig, generate_dataset, generate_video
from training.synth_timeline import place_instances

SHORT = SynthConfig(video_length_s=(8.0, 12.0))


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_dataset_format(tmp_path):
    out = tmp_path / "ds"
    s = generate_dataset(out, subjects=2, videos_per_subject=2, seed=5, config=SHORT)
    assert s["videos"] == 4
    files = sorted(p.name for p in (out / "landmarks").glob("*.npz"))
    assert files == ["s01_01.npz", "s01_02.npz", "s02_01.npz", "s02_02.npz"]
    with open(out / "annotations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["subject", "video", "onset", "apex", "offset", "type", "point"]
    for r in rows:
        on, ap, off, pt = (int(r[k]) for k in ("onset", "apex", "offset", "point"))
        assert 0 <= on < ap < off and on <= pt <= off
        assert r["type"] in ("macro", "micro") and r["video"].startswith(r["subject"])
    with np.load(out / "landmarks" / "s01_01.npz") as z:
        assert set(z.files) == {"landmarks", "valid", "fps", "image_size"}
        lm, valid = z["landmarks"], z["valid"]
        assert lm.dtype == np.float32 and lm.shape[1:] == (478, 3)
        assert valid.dtype == bool and valid.shape == (lm.shape[0],)
        assert float(z["fps"]) == 30.0 and tuple(z["image_size"]) in [(640, 360), (1280, 720)]
        assert np.isnan(lm[~valid]).all() and np.isfinite(lm[valid]).all()
        n = lm.shape[0]
    for r in rows:
        if r["video"] == "s01_01":
            assert int(r["offset"]) < n


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    a = generate_dataset(tmp_path / "a", subjects=2, videos_per_subject=1, seed=7, config=SHORT)
    b = generate_dataset(tmp_path / "b", subjects=2, videos_per_subject=1, seed=7, config=SHORT)
    generate_dataset(tmp_path / "c", subjects=2, videos_per_subject=1, seed=8, config=SHORT)
    assert a == {**b, "out_dir": a["out_dir"]}
    da, db, dc = (_digest(tmp_path / k) for k in "abc")
    assert da == db and len(da) == 4
    for name in da:
        if name != "synth_config.json":
            assert da[name] != dc[name], name


def test_subject_identity_is_shared_and_prefix_stable(tmp_path):
    generate_dataset(tmp_path / "a", subjects=1, videos_per_subject=1, seed=3, config=SHORT)
    generate_dataset(tmp_path / "b", subjects=2, videos_per_subject=1, seed=3, config=SHORT)
    fa = (tmp_path / "a" / "landmarks" / "s01_01.npz").read_bytes()
    fb = (tmp_path / "b" / "landmarks" / "s01_01.npz").read_bytes()
    assert fa == fb


def test_instance_statistics_match_cas_me2():
    cfg = SynthConfig()
    rng = np.random.default_rng(0)
    minutes, macro, micro, durs = 0.0, [], [], []
    for _ in range(150):
        n = int(rng.uniform(30, 120) * 30)
        inst = place_instances(rng, n, cfg)
        minutes += n / 30 / 60
        prev = None
        for i in inst:
            (macro if i.kind == "macro" else micro).append(i.n_frames)
            if prev is not None:
                assert i.onset - prev.offset - 1 >= 10  # gap between labelled instances
            prev = i
            assert i.onset >= 10 and i.offset <= n - 11
            assert i.onset < i.apex < i.offset and i.onset <= i.point <= i.offset
        durs += [(i.point - i.apex) / i.n_frames for i in inst]
    assert 3.0 <= len(macro) / minutes <= 5.0
    assert 0.5 <= len(micro) / minutes <= 1.0
    assert min(micro) >= 6 and max(micro) <= 15
    assert min(macro) >= 15 and max(macro) <= 120
    assert 0.08 < np.std(durs) < 0.2  # point noise ~0.18 x duration, clipped


def test_generate_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(InputError):
        generate_dataset(tmp_path / "x", subjects=0)
    with pytest.raises(InputError):
        generate_dataset(tmp_path / "x", seed=-1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(InputError):
        generate_dataset(tmp_path / "full", subjects=1, videos_per_subject=1, config=SHORT)


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["synth", "--out", str(out), "--subjects", "1", "--videos-per-subject", "1",
                   "--seed", "2", "--fps", "30"])
    assert rc == 0
    assert (out / "annotations.csv").exists() and (out / "landmarks" / "s01_01.npz").exists()
    assert "1/1" in capsys.readouterr().err
    assert cli_main(["synth", "--out", str(out), "--subjects", "1"]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert cli_main(["synth", "--out", str(out), "--subjects", "1", "--videos-per-subject", "1",
                     "--force"]) == 0
    capsys.readouterr()
    assert cli_main(["synth", "--out", str(tmp_path / "z"), "--subjects", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_single_video_is_deterministic():
    a, b = generate_video(9, length_s=10), generate_video(9, length_s=10)
    assert np.array_equal(a.landmarks, b.landmarks, equal_nan=True)
    assert a.instances == b.instances
    c = generate_video(10, length_s=10)
    assert a.landmarks.shape != c.landmarks.shape or not np.array_equal(
        a.landmarks, c.landmarks, equal_nan=True)


def test_cli_config_file_and_bad_values(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"micro_per_min": [6, 6], "video_length_s": [10, 10]}')
    out = tmp_path / "o"
    assert cli_main(["synth", "--out", str(out), "--subjects", "1", "--videos-per-subject", "1",
                     "--config", str(cfg)]) == 0
    rows = (out / "annotations.csv").read_text().splitlines()[1:]
    assert sum(r.split(",")[5] == "micro" for r in rows) >= 1
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text('{"nonsense": 1}')
    for argv in (["--config", str(bad)], ["--config", str(tmp_path / "missing.json")],
                 ["--fps", "0"]):
        assert cli_main(["synth", "--out", str(tmp_path / "x"), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("pfes synth: error:"), err


def test_dataset_videos_are_the_videos_generate_dataset_writes(tmp_path):
    from training.synth import annotation_rows, dataset_videos, write_video_npz

    generate_dataset(tmp_path / "ds", subjects=2, videos_per_subject=2, seed=9, config=SHORT)
    vids = list(dataset_videos(2, 2, 9, SHORT))
    assert [v.name for v in vids] == ["s01_01", "s01_02", "s02_01", "s02_02"]
    for v in vids:
        write_video_npz(tmp_path / "again.npz", v)
        assert (tmp_path / "again.npz").read_bytes() == \
            (tmp_path / "ds" / "landmarks" / f"{v.name}.npz").read_bytes()
    rows = [",".join(str(x) for x in r) for v in vids for r in annotation_rows(v)]
    assert rows == (tmp_path / "ds" / "annotations.csv").read_text().splitlines()[1:]
