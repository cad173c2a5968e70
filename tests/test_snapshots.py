"""Event snapshots: the frame ring, JPEG files named by stream and seq, the size limit, and the
pipeline's annotate hook putting the paths into the published event."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pipeline_fakes import ArraySource, LandmarkTracker, make_landmarks, small_net
from test_pipeline_lifecycle import FPS, _AlwaysHigh

from engine.detector import DetectorConfig
from pfes.errors import InputError
from stream.events import Event, parse_event
from stream.features import FeatureExtractor
from stream.pipeline import Pipeline, PipelineConfig
from stream.publish import EventWriter
from stream.snapshots import FrameRing, SnapshotConfig, Snapshots, face_crop


def _event(seq: int, apex_s: float, stream: str = "cam", track: int = 0) -> Event:
    return Event(
        "pfes.event/1",
        seq,
        stream,
        track,
        "micro",
        1,
        2,
        3,
        apex_s - 0.1,
        apex_s,
        apex_s + 0.1,
        1.0,
        0.8,
        4,
        1.0,
        2.0,
    )


def test_ring_finds_the_nearest_frame_within_its_window():
    ring = FrameRing(buffer_s=1.0)
    imgs = [np.full((4, 4, 3), k, np.uint8) for k in range(60)]
    for k, im in enumerate(imgs):
        ring.push(round(k * 1000 / 30), im, {0: (0, 0, 2, 2)})
    assert ring.find(59 * 1000 / 30)[1] is imgs[59]  # a reference, not a copy
    assert ring.find(40 * 1000 / 30 + 10)[1] is imgs[40]
    assert ring.find(10 * 1000 / 30) is None  # older than the 1 s kept
    assert ring.find(5000) is None
    ring.push(0, imgs[0], {})  # time went back: a new run
    assert len(ring) == 1


def test_face_crop_is_clipped_to_the_image():
    img = np.zeros((100, 200, 3), np.uint8)
    assert face_crop(img, (50, 20, 90, 80), 0.25).shape == (90, 60, 3)
    assert face_crop(img, (-50, -50, 500, 500), 0.3).shape == (100, 200, 3)
    assert face_crop(img, (300, 300, 400, 400), 0.3).size > 0


def test_annotate_writes_files_and_keeps_the_folder_under_its_limit(tmp_path):
    ramp = np.linspace(0, 100, 160, dtype=np.float32)[None, :, None]
    cfg = SnapshotConfig(tmp_path / "snaps", max_bytes=12_000)
    with Snapshots(cfg) as snaps:
        tracker = snaps.wrap_tracker("cam", LandmarkTracker({}))
        frames = [np.broadcast_to(ramp + 4 * k, (120, 160, 3)).astype(np.uint8) for k in range(30)]
        for k, im in enumerate(frames):
            tracker.process(im, round(k * 1000 / 30))
        evs = [snaps.annotate(_event(s, (10 + s) / 30)) for s in range(12)]
        missing = snaps.annotate(_event(12, 99.0))
    assert missing.snapshot is None and snaps.missed == 1
    assert all(set(e.snapshot) == {"frame"} for e in evs)  # no face box: no face crop
    names = [p.name for p in sorted((tmp_path / "snaps").glob("*.jpg"))]
    assert snaps.written == 12 and snaps.deleted > 0
    assert snaps.bytes <= 12_000 and 0 < len(names) < 12
    last = evs[-1].snapshot["frame"]
    assert last.endswith(f"cam-{snaps.run}-000011-frame.jpg")
    img = cv2.imread(last)[:, :, ::-1]
    assert np.abs(img.astype(int) - frames[21]).mean() < 1.5  # the apex frame, JPEG-coded
    assert not (tmp_path / "snaps" / "cam-x-000000-frame.jpg").exists()
    assert evs[0].snapshot["frame"].rsplit("/", 1)[1] not in names  # oldest went first


def test_bad_settings_are_input_errors(tmp_path):
    with pytest.raises(InputError):
        SnapshotConfig(tmp_path, max_bytes=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError):
        Snapshots(SnapshotConfig(tmp_path / "file" / "sub"))


class _Big(ArraySource):
    def __init__(self, n):
        super().__init__(n, FPS, name="cam")
        self._img = np.full((720, 1280, 3), 90, np.uint8)


def test_pipeline_events_carry_their_snapshots(tmp_path):
    lm, valid = make_landmarks(200, [], seed=0)
    net = small_net(FeatureExtractor(FPS).n_features)
    snaps = Snapshots(SnapshotConfig(tmp_path / "s", max_width=640))
    w = EventWriter(tmp_path / "ev.jsonl")
    pipe = Pipeline(
        [_Big(40)],
        _AlwaysHigh(net),
        DetectorConfig(macro_max_duration_s=60.0),
        tracker_factory=lambda s: snaps.wrap_tracker(s.name, LandmarkTracker({0: (lm, valid)})),
        feature_factory=lambda fps: FeatureExtractor(fps),
        writer=w,
        config=PipelineConfig(realtime=False),
        annotate=snaps.annotate,
    )
    rep = pipe.run()
    snaps.close()
    w.close()
    assert len(rep.events) == 1
    line = json.loads((tmp_path / "ev.jsonl").read_text())
    assert parse_event(line).snapshot == rep.events[0].snapshot == line["snapshot"]
    frame = cv2.imread(line["snapshot"]["frame"])
    assert frame.shape == (360, 640, 3)  # stored downscaled to max_width
    assert cv2.imread(line["snapshot"]["face"]).size > 0


def test_events_without_snapshot_keep_the_old_json():
    ev = _event(0, 1.0)
    assert "snapshot" not in json.loads(ev.to_json())
    assert parse_event(ev.to_json()) == ev


def test_clips_hold_onset_to_offset_as_h264(tmp_path):
    import av

    ramp = np.linspace(0, 100, 161, dtype=np.float32)[None, :, None]
    with Snapshots(SnapshotConfig(tmp_path, clips=True, clip_pad_s=0.2)) as snaps:
        tracker = snaps.wrap_tracker("cam", LandmarkTracker({}))
        for k in range(90):  # 161 x 121: odd sizes are cut to even for yuv420p
            tracker.process(
                np.broadcast_to(ramp + k, (121, 161, 3)).astype(np.uint8), round(k * 1000 / 30)
            )
        ev = _event(3, 1.5)  # onset 1.4 s, offset 1.6 s: frames 36..54 with the padding
        ev = snaps.annotate(ev)
    with av.open(ev.snapshot["clip"]) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264" and (st.width, st.height) == (160, 120)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 54 - 36 + 1
    assert abs(float(frames[0][60, 80, 0]) - float(ramp[0, 80, 0] + 36)) < 4  # first = frame 36


def test_clips_need_snapshots(capsys):
    from pfes.cli import main

    assert main(["run", "--clips", "--publish", "off"]) == 2
    assert "--clips needs --snapshots" in capsys.readouterr().err
