"""Single-video generation: labels match the injected motion, distractors are unlabelled."""

from __future__ import annotations

import numpy as np
import pytest

from pfes.errors import InputError
from training.synth import CHANNELS, SynthConfig, generate_video
from training.synth_aus import AU_REGION
from training.synth_face import GROUPS

REGION_POINTS = {
    "brows": list(GROUPS["brow_r"] + GROUPS["brow_l"]),
    "eyes": list(GROUPS["eye_upper_r"][1:-1] + GROUPS["eye_upper_l"][1:-1]
                 + GROUPS["eye_lower_r"][1:-1] + GROUPS["eye_lower_l"][1:-1]),
    "nose": [129, 358, 98, 327, 48, 278, 64, 294, 240, 460],
    "mouth": list(GROUPS["lip_upper_outer"] + GROUPS["lip_lower_outer"]),
    "chin": [152, 175, 199, 200, 18, 17, 84, 314, 201, 421],
}


def _region_of(aus):
    regs = {AU_REGION[a.split("_")[0]] for a in aus}
    return regs


def test_video_format():
    v = generate_video(1, length_s=20)
    n = round(20 * 30)
    assert v.landmarks.shape == (n, 478, 3) and v.landmarks.dtype == np.float32
    assert v.valid.shape == (n,) and v.valid.dtype == bool
    assert np.isnan(v.landmarks[~v.valid]).all()
    assert np.isfinite(v.landmarks[v.valid]).all()
    W, H = v.image_size
    assert (W, H) in [(640, 360), (1280, 720)]
    width = np.nanmedian(v.landmarks[:, 454, 0] - v.landmarks[:, 234, 0])
    assert 100 < width < 440
    assert v.channels.shape == (n, len(CHANNELS))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_labels_match_injected_motion(seed):
    cfg = SynthConfig(macro_per_min=(8.0, 8.0), micro_per_min=(4.0, 4.0)).quiet()
    v = generate_video(seed, cfg, length_s=60, keep_clean=True)
    assert len(v.instances) >= 5
    assert any(i.kind == "micro" for i in v.instances)
    clean = v.clean.astype(np.float64)
    for ins in v.instances:
        seg = clean[ins.onset:ins.offset + 1]
        disp = np.linalg.norm(seg - seg[0], axis=2)  # (L, 478)
        # the apex is where the motion of the moving points peaks
        moving = disp.max(axis=0) > 0.5 * disp.max()
        assert ins.onset + int(np.argmax(disp[:, moving].mean(axis=1))) == ins.apex
        # nothing moves at the onset and offset relative to the frames around
        assert np.abs(clean[ins.offset] - clean[ins.onset]).max() < 1e-6
        # the labelled region moves most
        apex_disp = disp[ins.apex - ins.onset]
        region_mean = {r: apex_disp[p].mean() for r, p in REGION_POINTS.items()}
        best = max(region_mean, key=region_mean.get)
        allowed = _region_of(ins.aus)
        if allowed & {"mouth", "chin"}:  # the jaw carries the lower lip and vice versa
            allowed |= {"mouth", "chin"}
        assert best in allowed, (ins, region_mean)
        assert ins.onset <= ins.point <= ins.offset
        assert ins.onset < ins.apex < ins.offset
    # between instances (quiet config) the face does not move at all
    still = np.ones(len(clean), bool)
    for ins in v.instances:
        still[ins.onset:ins.offset + 1] = False
    assert np.abs(clean[still] - clean[still][0]).max() < 1e-6


def test_micro_is_small_and_macro_large():
    cfg = SynthConfig(macro_per_min=(6.0, 6.0), micro_per_min=(6.0, 6.0)).quiet()
    v = generate_video(11, cfg, length_s=90, keep_clean=True)
    peak = {"macro": [], "micro": []}
    for ins in v.instances:
        d = np.linalg.norm(v.clean[ins.apex] - v.clean[ins.onset], axis=1).max()
        peak[ins.kind].append(d)
        n = ins.offset - ins.onset + 1
        if ins.kind == "micro":
            assert 6 <= n <= 15
        else:
            assert 15 <= n <= 120
    assert peak["micro"] and peak["macro"]
    assert np.median(peak["micro"]) < np.median(peak["macro"])
    assert max(peak["micro"]) < 0.15  # IOD units: a leak, not a full expression


def test_bad_config_is_rejected():
    with pytest.raises(InputError):
        SynthConfig(fps=0)
    with pytest.raises(InputError):
        SynthConfig(macro_duration_s=(2.0, 1.0))
    with pytest.raises(InputError):
        SynthConfig.from_dict({"fps": 30, "bogus": 1})
    with pytest.raises(InputError):
        generate_video(0, length_s=0.1)
    for bad in ({"micro_per_min": "abc"}, {"fps": "30"}, {"distractors": 1},
                {"frame_sizes_px": [[640.5, 360]]}, {"min_gap_frames": 2.5},
                {"jitter_px_at_200px": [0.1]}):
        with pytest.raises(InputError):
            SynthConfig.from_dict(bad)
    assert SynthConfig.from_dict(SynthConfig().to_dict()) == SynthConfig()


def test_tracker_gain_scales_motion():
    import dataclasses

    from training.synth_aus import TRACKER_GAIN

    base = SynthConfig(macro_per_min=(6.0, 6.0), micro_per_min=(0.0, 0.0)).quiet()
    full = generate_video(31, dataclasses.replace(base, tracker_gain_mix=(0.0, 0.0)),
                          length_s=30, keep_clean=True)
    tracked = generate_video(31, dataclasses.replace(base, tracker_gain_mix=(1.0, 1.0)),
                             length_s=30, keep_clean=True)
    assert full.instances == tracked.instances and full.instances
    for ins in full.instances:
        a = full.clean[ins.apex] - full.clean[ins.onset]
        b = tracked.clean[ins.apex] - tracked.clean[ins.onset]
        gains = [TRACKER_GAIN[x.split("_")[0]] for x in ins.aus]
        ratio = np.linalg.norm(b) / np.linalg.norm(a)
        assert min(gains) - 1e-3 <= ratio <= max(gains) + 1e-3, (ins.aus, ratio)


def test_unposed_landmarks_show_the_labelled_motion():
    from training.synth import unpose

    # head motion on, tracker noise off: removing the known pose gives back the clean shapes
    exact = SynthConfig(jitter_px_at_200px=(0.0, 0.0), shape_noise_iod=(0.0, 0.0),
                        glitches_per_min=(0.0, 0.0), dropouts_per_min=(0.0, 0.0),
                        head_turns_per_min=(4.0, 4.0))
    v = generate_video(41, exact, length_s=30, keep_clean=True)
    assert np.abs(v.pose[:, 0]).max() > 3.0
    assert np.abs(unpose(v) - v.clean).max() < 1e-3
    # with the default tracker noise, macro apexes still show in the unposed landmarks
    cfg = SynthConfig(macro_per_min=(8.0, 8.0), blinks_per_min=(0.0, 0.0),
                      talk_bursts_per_min=(0.0, 0.0), fidgets_per_min=(0.0, 0.0),
                      glitches_per_min=(0.0, 0.0), tracker_gain_mix=(0.0, 0.0))
    v = generate_video(42, cfg, length_s=60, keep_clean=True)
    lm = unpose(v)
    n_ok = 0
    macros = [i for i in v.instances if i.kind == "macro"]
    for ins in macros:
        seg = lm[ins.onset:ins.offset + 1]
        clean = v.clean[ins.onset:ins.offset + 1].astype(np.float64)
        moving = np.linalg.norm(clean[ins.apex - ins.onset] - clean[0], axis=1) > 0.02
        disp = np.nanmean(np.linalg.norm(seg[:, moving] - seg[0, moving], axis=2), axis=1)
        n_ok += abs(ins.onset + int(np.nanargmax(disp)) - ins.apex) <= max(2, ins.n_frames // 5)
    assert len(macros) >= 4 and n_ok >= 0.75 * len(macros)
