"""FileSource: every frame in order, timestamps, pacing, and translated errors."""

from __future__ import annotations

import time
from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from pfes.errors import InputError, SourceError
from stream.frames import Frame, Source
from stream.source_file import FileSource
from training.warpclip import encode_mp4


def _ramp_frames(n: int, w: int = 64, h: int = 48):
    """Frames whose mean grey level encodes the index (8 levels apart survives H.264)."""
    for i in range(n):
        yield np.full((h, w, 3), 8 + 8 * i, np.uint8)


@pytest.fixture(scope="module")
def ramp_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "ramp.mp4"
    assert encode_mp4(_ramp_frames(25), path, fps=25.0, crf=10, preset="ultrafast") == 25
    return path


def test_file_source_yields_every_frame_in_order(ramp_clip):
    with FileSource(ramp_clip) as src:
        assert isinstance(src, Source)
        assert src.fps == pytest.approx(25.0)
        assert src.size == (64, 48)
        frames = list(src)
    assert [f.index for f in frames] == list(range(25))
    levels = [float(f.image.mean()) for f in frames]
    assert np.all(np.diff(levels) > 4), levels  # decode order == presentation order
    pts = np.array([f.pts_s for f in frames])
    assert np.all(np.diff(pts) > 0)
    assert pts[1] - pts[0] == pytest.approx(1 / 25, abs=1e-3)
    arr = np.array([f.arrival_s for f in frames])
    assert np.all(np.diff(arr) >= 0)
    f0 = frames[0]
    assert f0.image.shape == (48, 64, 3) and f0.image.dtype == np.uint8
    assert src.dropped == 0
    with pytest.raises(FrozenInstanceError):
        f0.index = 3  # type: ignore[misc]


def test_file_source_realtime_paces_to_frame_rate(ramp_clip):
    t0 = time.monotonic()
    with FileSource(ramp_clip, realtime=True) as src:
        frames = [f for f, _ in zip(src, range(10), strict=False)]
    elapsed = time.monotonic() - t0
    assert len(frames) == 10
    assert elapsed >= 9 / 25 - 0.01
    gaps = np.diff([f.arrival_s for f in frames])
    assert np.median(gaps) == pytest.approx(1 / 25, abs=0.01)


def test_file_source_rgb_channel_order(tmp_path):
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 220
    path = tmp_path / "red.mp4"
    encode_mp4(iter([red] * 3), path, fps=10.0, crf=10, preset="ultrafast")
    with FileSource(path) as src:
        img = next(iter(src)).image
    assert img[..., 0].mean() > 180 and img[..., 2].mean() < 60


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        with FileSource(tmp_path / "nope.mp4"):
            pass


def test_directory_is_input_error(tmp_path):
    with pytest.raises(InputError):
        FileSource(tmp_path).open()


def test_garbage_file_is_source_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all " * 64)
    with pytest.raises(SourceError, match="cannot read video"):
        with FileSource(bad) as src:
            list(src)


def test_truncated_file_is_source_error(ramp_clip, tmp_path):
    data = ramp_clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError):
        with FileSource(cut) as src:
            list(src)


def test_close_twice_and_frame_type(ramp_clip):
    src = FileSource(ramp_clip)
    first = next(iter(src))  # iterating opens lazily
    assert isinstance(first, Frame) and first.index == 0
    src.close()
    src.close()
