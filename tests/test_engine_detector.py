"""Online peak detector: hysteresis, classification, flush, and batch == streaming."""

from __future__ import annotations

import numpy as np
import pytest

from engine.detector import DetectorConfig, PeakDetector, detect
from pfes.errors import InputError


def _curve():
    t = 200
    a = np.zeros(t)
    a[20:60] = 0.9  # 40 frames: macro
    a[100:110] = 0.8  # 10 frames: micro-sized
    p = np.zeros((t, 2))
    p[20:60] = (0.9, 0.1)
    p[100:110] = (0.8, 0.6)  # micro sigmoid above threshold but below macro
    return a, p


def test_hysteresis_bounds_and_kinds():
    a, p = _curve()
    out = detect(a, p, cfg=DetectorConfig(open_threshold=0.5, close_threshold=0.3))
    assert [(i.onset, i.offset, i.kind) for i in out] == [(20, 59, "macro"), (100, 109, "micro")]
    assert out[0].closed_frame == 60 and out[1].closed_frame == 110


def test_micro_rule_threshold_only_vs_over_macro():
    a, p = _curve()
    strict = detect(a, p, cfg=DetectorConfig(micro_over_macro=True))
    assert [i.kind for i in strict] == ["macro", "macro"]
    high = detect(a, p, cfg=DetectorConfig(micro_prob_threshold=0.7))
    assert [i.kind for i in high] == ["macro", "macro"]


def test_run_that_never_opens_is_dropped_and_long_runs_are_discarded():
    a = np.zeros(400)
    a[10:30] = 0.4  # above close, never above open
    a[50:350] = 0.9  # 300 frames > 8 s at 30 fps
    assert detect(a, np.full((400, 2), 0.9)) == []


def test_flush_closes_open_run_and_batch_equals_streaming():
    rng = np.random.default_rng(0)
    a = np.clip(np.convolve(rng.random(500), np.ones(9) / 9, mode="same") * 1.6 - 0.4, 0, 1)
    p = rng.random((500, 2))
    valid = rng.random(500) > 0.02
    batch = detect(a, p, valid)
    det = PeakDetector(DetectorConfig(), 30.0)
    stream = []
    for i in range(500):
        stream += det.push(i, a[i], p[i], bool(valid[i]))
    stream += det.flush()
    assert stream == batch and len(batch) > 0
    tail = np.zeros(50)
    tail[40:] = 0.9
    out = detect(tail, np.full((50, 2), (0.9, 0.0)))
    assert [(i.onset, i.offset) for i in out] == [(40, 49)]  # flushed at end of stream


def test_bad_config_and_frame_order():
    with pytest.raises(InputError):
        DetectorConfig(open_threshold=0.2, close_threshold=0.5)
    with pytest.raises(InputError):
        DetectorConfig.from_dict({"open_threshold": "x"})
    det = PeakDetector()
    det.push(5, 0.0, (0, 0))
    with pytest.raises(InputError):
        det.push(5, 0.0, (0, 0))


def test_short_dips_are_bridged_long_ones_are_not():
    a = np.zeros(200)
    a[20:50] = 0.9
    a[50:58] = 0.1  # 8-frame dip (0.27 s)
    a[58:90] = 0.9
    p = np.tile((0.9, 0.1), (200, 1))
    split = detect(a, p, cfg=DetectorConfig())
    assert [(i.onset, i.offset) for i in split] == [(20, 49), (58, 89)]
    merged = detect(a, p, cfg=DetectorConfig(merge_gap_s=0.33))  # 10 frames >= the dip
    assert [(i.onset, i.offset) for i in merged] == [(20, 89)]
    assert merged[0].closed_frame == 90 + 10  # final once the dip outlasts the bridge
    short = detect(a, p, cfg=DetectorConfig(merge_gap_s=0.2))  # 6 frames < the dip
    assert [(i.onset, i.offset) for i in short] == [(20, 49), (58, 89)]
    assert short[0].closed_frame == 50 + 6
    # an invalid frame inside the dip ends the run at once
    valid = np.ones(200, bool)
    valid[53] = False
    cut = detect(a, p, valid, cfg=DetectorConfig(merge_gap_s=0.33))
    assert [(i.onset, i.offset) for i in cut] == [(20, 49), (58, 89)]
    # streaming gives the same instances as the batch path
    det = PeakDetector(DetectorConfig(merge_gap_s=0.33), 30.0)
    stream = [x for i in range(200) for x in det.push(i, a[i], p[i])] + det.flush()
    assert stream == merged


def test_brief_runs_are_widened_around_the_apex():
    a = np.zeros(100)
    a[40:45] = [0.5, 0.7, 0.9, 0.7, 0.5]  # 5 frames, apex at 42
    p = np.tile((0.1, 0.9), (100, 1))
    plain = detect(a, p, cfg=DetectorConfig())
    assert [(i.onset, i.apex, i.offset) for i in plain] == [(40, 42, 44)]
    wide = detect(a, p, cfg=DetectorConfig(pad_to_s=0.33))  # 10 frames
    assert [(i.onset, i.apex, i.offset, i.kind) for i in wide] == [(38, 42, 47, "micro")]
    long_run = np.zeros(100)
    long_run[40:60] = 0.9
    same = detect(long_run, p, cfg=DetectorConfig(pad_to_s=0.33))
    assert [(i.onset, i.offset) for i in same] == [(40, 59)]  # longer runs are untouched
    with pytest.raises(InputError):
        DetectorConfig(merge_gap_s=-1.0)


def test_macro_offsets_are_extended_micro_are_not():
    a = np.zeros(200)
    a[20:60] = 0.9  # 40 frames
    a[100:110] = 0.8
    p = np.zeros((200, 2))
    p[20:60] = (0.9, 0.1)
    p[100:110] = (0.2, 0.8)
    out = detect(a, p, cfg=DetectorConfig(offset_extend=0.25))
    assert [(i.onset, i.offset, i.kind) for i in out] == [(20, 69, "macro"), (100, 109, "micro")]
    assert out[0].closed_frame == 60  # emitted as before: the offset is a prediction
