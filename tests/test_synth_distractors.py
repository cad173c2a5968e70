"""Unlabelled distractors: blinks close the eyes, talking moves the mouth, neither is labelled."""

from __future__ import annotations

import numpy as np

from training.synth import SynthConfig, generate_video


def _labelled(v) -> np.ndarray:
    m = np.zeros(len(v.valid), bool)
    for i in v.instances:
        m[i.onset:i.offset + 1] = True
    return m


def _eye_gap(clean: np.ndarray) -> np.ndarray:
    """(T,) mean vertical lid gap of both eyes, IOD units."""
    return 0.5 * ((clean[:, 145, 1] - clean[:, 159, 1]) + (clean[:, 374, 1] - clean[:, 386, 1]))


def test_blinks_close_eyes_at_unlabelled_times():
    cfg = SynthConfig(blinks_per_min=(15.0, 15.0), talk_bursts_per_min=(0.0, 0.0),
                      saccades_per_min=(0.0, 0.0))
    v = generate_video(21, cfg, length_s=60, keep_clean=True)
    assert len(v.blinks) >= 8
    gap = _eye_gap(v.clean)
    open_gap = np.median(gap)
    closed = gap < 0.3 * open_gap
    labelled = _labelled(v)
    assert (closed & ~labelled).sum() >= 5  # eyes shut while nothing is labelled
    for s, e in v.blinks:
        assert gap[s:e + 1].min() < 0.3 * open_gap
        assert 3 <= e - s + 1 <= 12  # 100-400 ms at 30 fps
    # every closure is explained by a blink: no AU43 in the labelled expressions
    in_blink = np.zeros(len(gap), bool)
    for s, e in v.blinks:
        in_blink[s:e + 1] = True
    assert not (closed & ~in_blink).any()


def test_talking_oscillates_mouth_in_unlabelled_spans():
    cfg = SynthConfig(talk_bursts_per_min=(4.0, 4.0), talk_burst_s=(2.0, 4.0),
                      blinks_per_min=(0.0, 0.0))
    v = generate_video(22, cfg, length_s=60, keep_clean=True)
    assert len(v.talks) >= 2
    labelled = _labelled(v)
    opening = v.clean[:, 14, 1] - v.clean[:, 13, 1]  # inner lip gap
    for s, e in v.talks:
        assert not labelled[max(0, s - 10):e + 11].any()  # gap kept to labelled instances
        seg = opening[s:e + 1] - opening[s:e + 1].mean()
        assert seg.std() > 0.01
        # oscillation at 2-6 Hz: count mean crossings
        crossings = np.count_nonzero(np.diff(np.sign(seg)) != 0)
        hz = crossings / 2 / ((e - s + 1) / v.fps)
        assert 1.0 <= hz <= 8.0, hz


def test_head_motion_jitter_glitches_and_dropouts():
    cfg = SynthConfig(glitches_per_min=(6.0, 6.0), dropouts_per_min=(6.0, 6.0),
                      head_turns_per_min=(4.0, 4.0))
    v = generate_video(23, cfg, length_s=60)
    assert v.glitches and v.dropouts
    for s, e in v.dropouts:
        assert not v.valid[s:e + 1].any()
    assert v.valid.sum() == len(v.valid) - sum(e - s + 1 for s, e in v.dropouts)
    assert np.abs(v.pose[:, :3]).max() <= 20.0 + 1e-9
    assert np.abs(v.pose[:, 0]).max() > 4.0  # the head does turn
    # jitter: frame-to-frame motion of a stable point is small but not zero
    lm = v.landmarks[:, 6, :2]
    step = np.linalg.norm(np.diff(lm, axis=0), axis=1)
    step = step[np.isfinite(step)]
    assert 0.05 < np.median(step) < 3.0
    labelled = _labelled(v)
    for s, e in v.glitches + v.dropouts:
        assert not labelled[s:e + 1].any()


def test_quiet_config_has_no_distractors():
    v = generate_video(24, SynthConfig().quiet(), length_s=30)
    assert not (v.blinks or v.talks or v.glitches or v.dropouts)
    assert v.valid.all() and not v.pose.any()


def test_fidgets_and_drift_move_the_face_outside_labels():
    cfg = SynthConfig(fidgets_per_min=(8.0, 8.0), blinks_per_min=(0.0, 0.0),
                      talk_bursts_per_min=(0.0, 0.0), resting_drift=0.05,
                      saccades_per_min=(0.0, 0.0))
    v = generate_video(25, cfg, length_s=60, keep_clean=True)
    assert len(v.fidgets) >= 4
    labelled = _labelled(v)
    for s, e in v.fidgets:
        assert not labelled[max(0, s - 10):e + 11].any()
        seg = v.clean[s:e + 1].astype(np.float64)
        assert np.abs(seg - seg[0]).max() > 1e-3  # something moved
    # the resting face drifts a little even far from any event
    busy = labelled.copy()
    for s, e in v.fidgets:
        busy[s:e + 1] = True
    rest = v.clean[~busy].astype(np.float64)
    spread = np.abs(rest - rest.mean(axis=0)).max()
    assert 1e-4 < spread < 0.05


def test_gaze_moves_irises_in_saccades():
    cfg = SynthConfig(saccades_per_min=(30.0, 30.0), blinks_per_min=(0.0, 0.0))
    v = generate_video(26, cfg, length_s=30, keep_clean=True)
    iris_x = v.clean[:, 468, 0] - v.clean[:, 33, 0]  # relative to the eye corner
    step = np.abs(np.diff(iris_x))
    assert np.ptp(iris_x) > 0.03  # IOD units
    assert (step > 0.005).sum() >= 5  # several quick shifts
    assert np.median(step) < 1e-3  # mostly fixations


def test_blink_drag_follows_eye_closure_only_when_asked():
    from training.synth import _CH, blink_drag

    drag = blink_drag()
    assert drag.shape == (478, 3) and drag[10, 1] > 0.03  # forehead pulled down
    assert not drag[[159, 386, 468, 473]].any()  # eyelids and irises: the AU43 field's job
    corr = {}
    for k in (0.0, 1.0):
        cfg = SynthConfig(video_length_s=(60.0, 60.0), tracker_blink_drag=(k, k))
        vid = generate_video(5, cfg, keep_clean=True)
        closure = 0.5 * (vid.channels[:, _CH["AU43_r"]] + vid.channels[:, _CH["AU43_l"]])
        assert closure.max() > 0.5  # there are blinks
        y = vid.clean[:, 10, 1] - vid.clean[:, 10, 1].mean()
        corr[k] = float(np.corrcoef(closure, y)[0, 1])
    assert corr[1.0] > 0.8 and abs(corr[0.0]) < 0.3


def test_brow_jitter_shakes_the_brows_only_and_only_when_asked():
    from stream.features import extract_features, feature_names
    from stream.quality import brow_jitter

    length = (30.0, 30.0)
    plain = generate_video(5, SynthConfig(video_length_s=length))
    off = generate_video(5, SynthConfig(video_length_s=length, tracker_brow_jitter_iod=(0.0, 0.0)))
    assert np.array_equal(plain.landmarks, off.landmarks, equal_nan=True)  # default unchanged
    on = generate_video(5, SynthConfig(video_length_s=length,
                                       tracker_brow_jitter_iod=(0.004, 0.004)))
    fp, okp = extract_features(plain.landmarks, plain.valid, plain.fps)
    fo, oko = extract_features(on.landmarks, on.valid, on.fps)
    assert brow_jitter(fo, oko) > 1.5 * brow_jitter(fp, okp)
    mouth = feature_names().index("mouth_corner.diff2")
    ratio = np.median(np.abs(fo[oko, mouth])) / np.median(np.abs(fp[okp, mouth]))
    assert 0.7 < ratio < 1.3  # the mouth is no noisier
