"""``pfes run`` -> ``pfes dashboard`` -> headless Chromium: events listed, curve drawn.

Real processes on random loopback ports, the bundled demo clip and model, Debian's Chromium
driven by Selenium. Checks the page's DOM (one row per event the run wrote to its JSONL, with
a loaded thumbnail) and the canvas pixels (the intensity curve's colour), and saves a
screenshot under tmp_path (also to $PFES_SCREENSHOT_DIR when set, which is how
docs/img/dashboard.png is made).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pfes.commands.run import DEMO_CLIP

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.network,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="Debian chromium + chromium-driver not installed (bash scripts/install.sh --system)",
    ),
]


@pytest.fixture
def demo():
    """The tests that run the real pipeline: MediaPipe and the bundled clip."""
    pytest.importorskip("mediapipe")
    if not DEMO_CLIP.is_file():
        pytest.skip("bundled demo clip not built")


PFES = [sys.executable, "-m", "pfes"]

# pixels of the curve's colour (#1f77b4) on a canvas, with anti-aliasing tolerance
CURVE_PIXELS_JS = """
const out = {};
for (const div of document.querySelectorAll('.curve')) {
  const cv = div.querySelector('canvas');
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  let n = 0;
  for (let k = 0; k < d.length; k += 4)
    if (Math.abs(d[k] - 31) < 25 && Math.abs(d[k+1] - 119) < 25 && Math.abs(d[k+2] - 180) < 25 && d[k+3] > 200) n++;
  out[div.dataset.key] = n;
}
return out;
"""

ROWS_JS = """
return [...document.querySelectorAll('#events tbody tr.event')].map(tr => ({
  kind: tr.dataset.kind, apex: Number(tr.dataset.apexFrame), emitted_at: Number(tr.dataset.emittedAt),
  thumb: (() => { const i = tr.querySelector('img.thumb'); return i ? i.complete && i.naturalWidth > 0 : null; })(),
}));
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(pred, timeout_s: float, what: str, poll_s: float = 0.2):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class _Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(PFES + args, text=True, **kw)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    f.close()


@pytest.fixture
def procs():
    ps = _Procs()
    yield ps
    ps.stop_all()


def _dashboard(procs: _Procs, endpoint: str, snap_dir: Path) -> str:
    p = procs.start(
        ["dashboard", "--connect", endpoint, "--port", "0", "--snapshots", str(snap_dir)],
        stdout=subprocess.PIPE,
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line.startswith("dashboard on http://127.0.0.1:"), line
    return line.split()[2]


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
    ):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    yield drv
    drv.quit()


def _run_args(endpoint: str, events: Path, snap_dir: Path, fast: bool = True) -> list[str]:
    return [
        "run",
        "--publish",
        endpoint,
        "--events",
        str(events),
        "--wait-subscribers",
        "1",
        "--snapshots",
        str(snap_dir),
    ] + (["--fast"] if fast else [])


def _events(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _check_page(browser, want: list[dict], timeout_s: float = 60.0) -> None:
    """Every event in ``want`` listed with a loaded thumbnail, and a curve drawn."""
    keys = {(e["kind"], e["apex_frame"], e["emitted_at"]) for e in want}

    def listed():
        rows = browser.execute_script(ROWS_JS)
        got = {(r["kind"], r["apex"], r["emitted_at"]): r["thumb"] for r in rows}
        return keys <= set(got) and all(got[k] for k in keys)

    _wait(listed, timeout_s, f"the page to list {len(keys)} events with thumbnails")
    pixels = _wait(
        lambda: {k: n for k, n in browser.execute_script(CURVE_PIXELS_JS).items() if n > 300},
        10,
        "the intensity curve to be drawn",
    )
    assert "demo/0" in pixels
    assert browser.find_element("id", "conn").text == "connected"
    health = browser.find_element("css selector", '.health[data-stream="demo"]').text
    assert "frames" in health and "fps" in health


def _screenshot(browser, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    out = os.environ.get("PFES_SCREENSHOT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(out) / name)


@pytest.mark.mediapipe
def test_dashboard_shows_the_demo_clip(demo, procs, browser, tmp_path):
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    url = _dashboard(procs, endpoint, snaps)
    browser.get(url)
    _wait(lambda: browser.find_element("id", "conn").text == "connected", 20, "the WebSocket")
    ev_path = tmp_path / "ev.jsonl"
    run = procs.start(_run_args(endpoint, ev_path, snaps), stdout=subprocess.DEVNULL)
    assert run.wait(timeout=120) == 0
    want = _events(ev_path)
    assert len(want) >= 3
    _check_page(browser, want)
    _screenshot(browser, tmp_path, "dashboard.png")


@pytest.mark.mediapipe
def test_dashboard_survives_publisher_restart(demo, procs, browser, tmp_path):
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    url = _dashboard(procs, endpoint, snaps)
    browser.get(url)
    _wait(lambda: browser.find_element("id", "conn").text == "connected", 20, "the WebSocket")
    # first publisher plays the clip in real time and is killed once it has published an event
    first_ev = tmp_path / "first.jsonl"
    first = procs.start(_run_args(endpoint, first_ev, snaps, fast=False), stdout=subprocess.DEVNULL)
    _wait(lambda: first_ev.is_file() and _events(first_ev), 60, "the first publisher's event")
    _check_page(browser, _events(first_ev)[:1])
    first.kill()
    first.wait()
    second_ev = tmp_path / "second.jsonl"
    second = procs.start(_run_args(endpoint, second_ev, snaps), stdout=subprocess.DEVNULL)
    assert second.wait(timeout=120) == 0
    want = _events(second_ev)
    assert len(want) >= 3
    _check_page(browser, want)
    assert "publisher restarts 1" in browser.find_element("id", "pubs").text
    _screenshot(browser, tmp_path, "dashboard-restart.png")


def test_what_moved_and_filters(procs, browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    from stream.publish import ZmqPublisher

    with ZmqPublisher("tcp://127.0.0.1:*") as pub:
        url = _dashboard(procs, pub.endpoint, tmp_path)
        assert pub.wait_for_subscribers(1, timeout_s=10)
        browser.get(url)
        _wait(lambda: browser.find_element("id", "conn").text == "connected", 20, "the WebSocket")
        base = {
            "schema": "pfes.event/1",
            "track": 0,
            "onset_frame": 1,
            "apex_frame": 2,
            "offset_frame": 3,
            "onset_s": 0.1,
            "apex_s": 0.2,
            "offset_s": 0.3,
            "score": 1.0,
            "class_prob": 0.7,
            "emitted_frame": 5,
            "emitted_at": time.time(),
            "latency_ms": 3.0,
        }
        pub.send(
            "event.door",
            {
                **base,
                "seq": 0,
                "stream": "door",
                "kind": "micro",
                "what": "a brief smile",
                "moved": [["mouthSmileLeft", 0.41], ["browInnerUp", -0.12]],
            },
        )
        pub.send("event.lobby", {**base, "seq": 1, "stream": "lobby", "kind": "macro"})
        rows = "#events tbody tr.event"
        _wait(lambda: len(browser.find_elements("css selector", rows)) == 2, 20, "two events")
        what = browser.find_element("css selector", 'tr[data-stream="door"] td.what').text
        assert "a brief smile" in what and "mouthSmileLeft +0.41" in what
        assert "browInnerUp -0.12" in what

        def shown():
            return sorted(
                r.get_attribute("data-stream")
                for r in browser.find_elements("css selector", rows)
                if r.is_displayed()
            )

        Select(browser.find_element("id", "f-stream")).select_by_value("door")
        assert shown() == ["door"]
        Select(browser.find_element("id", "f-stream")).select_by_value("")
        Select(browser.find_element("id", "f-kind")).select_by_value("macro")
        assert shown() == ["lobby"]
