"""The face mesh's direct graph path gives exactly the landmarks of ``FaceMesh.process``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from stream.source_file import FileSource  # noqa: E402
from stream.tracker_mediapipe import (  # noqa: E402
    MediaPipeFaceMesh,
    _parse_landmark_list,
    _to_pixels,
)

pytestmark = pytest.mark.mediapipe

DEMO = "stream/assets/demo.mp4"


def _landmark_list(xyz, visibility=None):
    from mediapipe.framework.formats import landmark_pb2

    msg = landmark_pb2.NormalizedLandmarkList()
    for i, (x, y, z) in enumerate(xyz):
        p = msg.landmark.add(x=float(x), y=float(y), z=float(z))
        if visibility is not None:
            p.visibility = float(visibility[i])
    return msg


def test_parse_matches_protobuf_and_rejects_other_layouts():
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(478, 3)).astype(np.float32)
    xyz[5] = 0.0  # zeros are still written (proto2 optional fields)
    msg = _landmark_list(xyz)
    got = _parse_landmark_list(msg.SerializeToString())
    assert got is not None and got.dtype == np.float32
    np.testing.assert_array_equal(got, xyz)
    want = _to_pixels(msg.landmark, 640, 360)
    got[:, 0] *= 640
    got[:, 1] *= 360
    got[:, 2] *= 640
    np.testing.assert_array_equal(got, want)
    assert _parse_landmark_list(_landmark_list(xyz, np.ones(478)).SerializeToString()) is None
    assert _parse_landmark_list(b"") is None
    assert _parse_landmark_list(b"\x0a\x0f" + b"\x00" * 15) is None


def test_direct_path_equals_process_on_real_frames():
    with FileSource(DEMO) as src:
        frames = [f for f, _ in zip(src, range(40), strict=False)]
    fast = MediaPipeFaceMesh(direct=True)
    slow = MediaPipeFaceMesh(direct=False)
    assert fast._direct is not None and slow._direct is None
    n_faces = 0
    with fast, slow:
        for f in frames:
            a = fast.process(f.image, int(f.pts_s * 1000))
            b = slow.process(f.image, int(f.pts_s * 1000))
            assert [x.track_id for x in a] == [x.track_id for x in b]
            for x, y in zip(a, b, strict=True):
                assert x.landmarks.dtype == np.float32
                np.testing.assert_array_equal(x.landmarks, y.landmarks)
            n_faces += len(a)
        assert f.image.flags.writeable  # the caller's frame is left as it was
    assert n_faces == len(frames)
    # a layout the vectorised parser does not know falls back to protobuf parsing
    xyz = np.random.default_rng(1).random((478, 3)).astype(np.float32)
    msg = _landmark_list(xyz, np.ones(478))
    np.testing.assert_array_equal(
        fast._direct.to_pixels(msg.SerializeToString(), 64, 32), _to_pixels(msg.landmark, 64, 32)
    )
