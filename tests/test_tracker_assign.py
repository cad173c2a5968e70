"""Track ids: association, loss, new ids after a gap, never reused; FaceTracker plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from pfes.errors import InputError
from stream.tracker import FaceTracker, TrackAssigner, bbox_of, check_image, make_tracker


def _box(cx: float, cy: float, size: float = 100.0):
    return (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


def test_single_face_keeps_its_id_while_moving():
    a = TrackAssigner(max_missed_frames=3)
    ids = [a.assign([_box(100 + 4 * t, 100)]) for t in range(30)]
    assert ids[0] == [(0, True)]
    assert all(x == [(0, False)] for x in ids[1:])


def test_two_faces_get_two_stable_ids_whatever_the_order():
    a = TrackAssigner()
    first = a.assign([_box(100, 100), _box(400, 100)])
    assert first == [(0, True), (1, True)]
    for t in range(10):  # detector order flips every frame
        boxes = [_box(100 + t, 100), _box(400 - t, 100)]
        out = a.assign(boxes[::-1] if t % 2 else boxes)
        got = dict(zip([round(b[0]) for b in (boxes[::-1] if t % 2 else boxes)], out, strict=True))
        assert got[round(boxes[0][0])] == (0, False)
        assert got[round(boxes[1][0])] == (1, False)


def test_short_miss_keeps_id_long_gap_gives_new_id():
    a = TrackAssigner(max_missed_frames=5)
    a.assign([_box(100, 100)])
    for _ in range(5):
        a.assign([])
    assert a.assign([_box(102, 100)]) == [(0, False)]  # within 5 misses: same track
    for _ in range(6):
        a.assign([])
    assert a.live_ids == []
    assert a.assign([_box(102, 100)]) == [(1, True)]  # after the gap: new id


def test_ids_are_never_reused_after_reset():
    a = TrackAssigner()
    a.assign([_box(100, 100), _box(300, 100)])
    a.reset()
    assert a.assign([_box(100, 100)]) == [(2, True)]


def test_fast_motion_matches_on_centre_distance_not_size_jump():
    a = TrackAssigner(min_iou=0.3, max_centre_dist=0.5)
    a.assign([_box(100, 100)])
    # no overlap with IoU >= 0.3 but centre moved 0.4 box sizes: same face
    assert a.assign([_box(140, 100)]) == [(0, False)]
    # a box three times bigger at the same place is a different face
    assert a.assign([_box(140, 100, size=300)]) == [(1, True)]


def test_far_jump_is_a_new_track():
    a = TrackAssigner()
    a.assign([_box(100, 100)])
    assert a.assign([_box(500, 100)]) == [(1, True)]


class _FakeTracker(FaceTracker):
    """Returns prepared meshes per call (a fake passed in, no MediaPipe)."""

    def __init__(self, script, **kw):
        super().__init__(**kw)
        self.script = list(script)

    def _detect(self, image, timestamp_ms):
        return self.script.pop(0)


def _mesh(cx: float, cy: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    m = rng.uniform(-50, 50, size=(478, 3)).astype(np.float32)
    m[:, 0] += cx
    m[:, 1] += cy
    return m


def test_face_tracker_process_sorts_by_id_and_caps_faces():
    img = np.zeros((360, 640, 3), np.uint8)
    script = [[_mesh(100, 100)], [_mesh(400, 100), _mesh(102, 100)], [_mesh(400, 100)] * 3]
    with _FakeTracker(script, max_faces=2) as tr:
        f0 = tr.process(img, 0)
        f1 = tr.process(img, 33)
        f2 = tr.process(img, 66)
    assert [(f.track_id, f.is_new) for f in f0] == [(0, True)]
    assert [(f.track_id, f.is_new) for f in f1] == [(0, False), (1, True)]
    assert len(f2) == 2  # capped at max_faces
    assert f1[0].bbox == bbox_of(f1[0].landmarks)
    with pytest.raises(RuntimeError, match="closed"):
        tr.process(img, 99)


def test_check_image_rejects_wrong_inputs():
    with pytest.raises(InputError):
        check_image(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError):
        check_image(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError):
        FaceTracker(max_faces=0)


def test_make_tracker_unknown_name():
    with pytest.raises(InputError, match="unknown tracker"):
        make_tracker("dlib")


def test_tasks_tracker_needs_a_model_file(tmp_path):
    with pytest.raises(InputError):
        make_tracker("tasks")
    with pytest.raises(InputError, match="not found"):
        make_tracker("tasks", model_path=tmp_path / "face_landmarker.task")
