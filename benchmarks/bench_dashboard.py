"""Does the dashboard keep up? Intensity at a high rate into ``pfes dashboard`` and a headless
Chromium page; measures the page's animation frame intervals and what reached the page.

    .venv/bin/python benchmarks/bench_dashboard.py --streams 4 --rate 300 --seconds 10

A publisher (``stream.publish.ZmqPublisher``) sends ``intensity.<stream>`` messages for
``--streams`` streams at ``--rate`` points per second each, plus a status heartbeat a second;
the page is Debian's Chromium driven by Selenium (as tests/test_dashboard_browser.py). Prints
the page's requestAnimationFrame interval percentiles over the run (16.7 ms = 60 fps; a
stutter is an interval well above that), the JavaScript long tasks (> 50 ms) it saw, and the
points of each curve the page holds at the end.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time

RAF_JS = """
window.__iv = []; let last = performance.now();
function tick(t) { window.__iv.push(t - last); last = t; requestAnimationFrame(tick); }
requestAnimationFrame(tick);
window.__long = 0;
try { new PerformanceObserver(l => { window.__long += l.getEntries().length; })
  .observe({entryTypes: ['longtask']}); } catch (e) {}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--rate", type=float, default=300.0, help="points per second per stream")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()

    import numpy as np
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    from stream.publish import ZmqPublisher

    with ZmqPublisher("tcp://127.0.0.1:*") as pub, tempfile.TemporaryDirectory() as tmp:
        dash = subprocess.Popen(
            [sys.executable, "-m", "pfes", "dashboard", "--connect", pub.endpoint, "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert dash.stdout is not None
        url = dash.stdout.readline().split()[2]
        opts = Options()
        opts.binary_location = "/usr/bin/chromium"
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp}",
            "--window-size=1280,1000",
        ):
            opts.add_argument(flag)
        drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            pub.wait_for_subscribers(1, timeout_s=10)
            drv.get(url)
            time.sleep(1.0)
            drv.execute_script(RAF_JS)
            names = [f"cam{k}" for k in range(args.streams)]
            n = int(args.rate * args.seconds)
            t0 = time.monotonic()
            for i in range(n):
                t = i / args.rate
                for name in names:
                    pub.send(
                        f"intensity.{name}",
                        {
                            "schema": "pfes.intensity/1",
                            "stream": name,
                            "track": 0,
                            "frame": i,
                            "t": t,
                            "intensity": 0.5 + 0.4 * math.sin(t * 3),
                            "apex": [0.5, 0.5],
                            "valid": True,
                        },
                    )
                if i % int(args.rate) == 0:
                    for name in names:
                        pub.send(
                            f"status.{name}",
                            {
                                "schema": "pfes.status/1",
                                "stream": name,
                                "fps": args.rate,
                                "frames": i,
                                "thresholds": {"open": 0.5, "close": 0.3},
                            },
                        )
                    pub.poll()
                wait = t0 + (i + 1) / args.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            sent_s = time.monotonic() - t0
            time.sleep(1.0)
            iv = np.asarray(drv.execute_script("return window.__iv;")[1:], dtype=float)
            long_tasks = drv.execute_script("return window.__long;")
            held = drv.execute_script(
                "return [...S.curves.values()].map(c => c.t.length);"
            )  # page's own state
        finally:
            drv.quit()
            dash.terminate()
            dash.wait(timeout=10)
            dash.stdout.close()
    print(
        f"{args.streams} streams x {args.rate:.0f} points/s for {sent_s:.1f} s "
        f"({args.streams * n} intensity messages); points per curve on the page: {held}"
    )
    print(
        f"animation frame interval ms: p50 {np.percentile(iv, 50):.1f}, "
        f"p99 {np.percentile(iv, 99):.1f}, max {iv.max():.1f} over {iv.size} frames; "
        f"frames over 50 ms: {(iv > 50).sum()}; long tasks: {long_tasks}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
