"""The bundled demo clip matches its script and ground truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from stream.source_file import FileSource

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "stream" / "assets"


def _demo_module():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_demo_clip
    finally:
        sys.path.pop(0)
    return make_demo_clip


def test_demo_json_matches_the_script():
    gt = json.loads((ASSETS / "demo.json").read_text())
    mod = _demo_module()
    assert gt["fps"] == 30.0 and gt["frames"] == mod.N_FRAMES and gt["size"] == [640, 360]
    assert 15 <= gt["frames"] / gt["fps"] <= 25
    got = [(e["kind"], e["type"], e["onset"], e["apex"], e["offset"]) for e in gt["events"]]
    want = [(e.kind, e.type, e.onset, e.apex, e.offset) for e in mod.DEMO_EVENTS]
    assert got == want
    types = [e["type"] for e in gt["events"]]
    assert types.count("macro") >= 2 and types.count("micro") >= 1
    ev = sorted(gt["events"], key=lambda e: e["onset"])
    for a, b in zip(ev, ev[1:], strict=False):
        assert b["onset"] - a["offset"] >= 30  # neutral stretches between events
    for e in ev:
        if e["type"] == "micro":
            assert e["offset"] - e["onset"] + 1 < 15


def test_demo_mp4_is_small_and_decodes():
    mp4 = ASSETS / "demo.mp4"
    assert mp4.stat().st_size < 3_000_000
    gt = json.loads((ASSETS / "demo.json").read_text())
    with FileSource(mp4) as src:
        assert src.size == (640, 360) and src.fps == pytest.approx(30.0)
        n = sum(1 for _ in src)
    assert n == gt["frames"]
