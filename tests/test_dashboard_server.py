"""The dashboard's state and web server, without a browser or a pipeline.

State: batching, replay dedup, publisher restarts, curve windows. Server: the page and its
files, the WebSocket's full + update messages, snapshots served from their folder only,
the token, and ZeroMQ in to WebSocket out on random loopback ports.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from pfes.cli import main
from pfes.dashboard.server import DashboardConfig, is_loopback, make_app
from pfes.dashboard.state import DashboardState
from pfes.errors import InputError
from stream.subscribe import Message


def _ev(seq: int, emitted_at: float, stream: str = "cam", **kw) -> Message:
    body = {
        "schema": "pfes.event/1",
        "seq": seq,
        "stream": stream,
        "track": 0,
        "kind": "micro",
        "onset_frame": 1,
        "apex_frame": 2,
        "offset_frame": 3,
        "onset_s": 0.1,
        "apex_s": 0.2,
        "offset_s": 0.3,
        "score": 1.0,
        "class_prob": 0.7,
        "emitted_frame": 5,
        "emitted_at": emitted_at,
        "latency_ms": 3.0,
        **kw,
    }
    return Message(f"event.{stream}", "event", stream, body)


def _pt(t: float, value: float, stream: str = "cam", track: int = 0) -> Message:
    body = {
        "schema": "pfes.intensity/1",
        "stream": stream,
        "track": track,
        "frame": int(t * 30),
        "t": t,
        "intensity": value,
        "apex": [0.1, 0.2],
        "valid": True,
    }
    return Message(f"intensity.{stream}", "intensity", stream, body)


def test_state_batches_points_and_trims_the_window():
    st = DashboardState(window_s=2.0, clock=lambda: 100.0)
    for k in range(100):
        st.feed("ep", _pt(k / 30, k / 100))
    upd = st.take_updates()
    assert len(upd["points"]["cam/0"]["t"]) == 100
    assert st.take_updates()["points"] == {}  # taken once
    full = st.full()["curves"]["cam/0"]
    assert full["t"][0] >= full["t"][-1] - 2.0 and len(full["t"]) == 61


def test_state_drops_replays_and_sees_a_restart():
    st = DashboardState()
    st.feed("ep", _ev(0, 10.0))
    st.feed("ep", _ev(1, 11.0))
    st.feed("ep", _ev(1, 11.0))  # the publisher's replay to a late subscriber
    assert [e["seq"] for e in st.take_updates()["events"]] == [0, 1]
    st.feed("ep", _pt(5.0, 0.2))
    st.feed("ep", _pt(5.0, 0.2))  # last-value cache replay: ignored
    st.feed("ep", _pt(0.0, 0.1))  # source time back to 0: a new run of the stream
    st.feed("ep", _ev(0, 20.0))  # seq 0 again with another emitted_at: a new publisher
    upd = st.take_updates()
    assert upd["resets"] == {"cam/0": 1}
    assert upd["points"]["cam/0"]["t"] == [0.0]
    assert [(e["seq"], e["epoch"]) for e in upd["events"]] == [(0, 1)]
    assert upd["publishers"]["ep"]["restarts"] == 1
    assert len(st.full()["events"]) == 3


def test_config_refuses_to_expose_without_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(InputError, match="--token"):
        DashboardConfig(endpoints=("tcp://127.0.0.1:1",), host="0.0.0.0")
    with pytest.raises(InputError, match="at least 8"):
        DashboardConfig(endpoints=("tcp://127.0.0.1:1",), token="short")
    DashboardConfig(endpoints=("tcp://127.0.0.1:1",), host="0.0.0.0", token="a-long-token")


def test_cli_exposed_without_token_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("PFES_DASHBOARD_TOKEN", raising=False)
    assert main(["dashboard", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "give --token" in err and "Traceback" not in err
    assert main(["dashboard", "--snapshots", "/nonexistent/folder"]) == 2


async def _client(cfg: DashboardConfig, state: DashboardState) -> TestClient:
    client = TestClient(TestServer(make_app(cfg, state, subscribe=False)))
    await client.start_server()
    return client


def test_page_websocket_and_snapshots(tmp_path):
    (tmp_path / "cam-000001-face.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "secret.txt").write_text("no")
    cfg = DashboardConfig(endpoints=("tcp://127.0.0.1:1",), snapshot_dirs=(tmp_path,), push_s=0.02)
    st = DashboardState()
    st.feed("ep", _ev(0, 1.0, what="smile", moved=[["mouthSmileLeft", 0.4]]))

    async def go() -> None:
        client = await _client(cfg, st)
        try:
            page = await client.get("/")
            assert (
                page.status == 200 and "<canvas" not in await page.text()
            )  # canvases come from JS
            for f in ("static/app.js", "static/style.css"):
                assert (await client.get("/" + f)).status == 200
            assert (await client.get("/snapshots/cam-000001-face.jpg")).status == 200
            for bad in ("secret.txt", "..%2Fsecret.txt", "missing.jpg"):
                assert (await client.get("/snapshots/" + bad)).status == 404
            ws = await client.ws_connect("/ws")
            full = json.loads((await ws.receive()).data)
            assert full["type"] == "full" and full["events"][0]["what"] == "smile"
            for k in range(50):
                st.feed("ep", _pt(k / 30, 0.5))
            upd = json.loads((await ws.receive(timeout=5)).data)
            while not upd["points"]:
                upd = json.loads((await ws.receive(timeout=5)).data)
            assert upd["type"] == "update" and len(upd["points"]["cam/0"]["t"]) == 50
            await ws.close()
        finally:
            await client.close()

    asyncio.run(go())


def test_token_is_required_everywhere_but_healthz():
    cfg = DashboardConfig(endpoints=("tcp://127.0.0.1:1",), token="sesame-sesame")

    async def go() -> None:
        client = await _client(cfg, DashboardState())
        try:
            assert (await client.get("/")).status == 401
            assert (await client.get("/static/app.js")).status == 401
            assert (await client.get("/?token=wrong-token")).status == 401
            assert (await client.get("/healthz")).status == 200
            ok = await client.get("/?token=sesame-sesame")
            assert ok.status == 200
            # the cookie set by that visit admits the WebSocket and the page's files
            assert (await client.get("/static/app.js")).status == 200
            ws = await client.ws_connect("/ws")
            assert json.loads((await ws.receive()).data)["type"] == "full"
            await ws.close()
            client.session.cookie_jar.clear()
            hdr = {"Authorization": "Bearer sesame-sesame"}
            assert (await client.get("/static/app.js", headers=hdr)).status == 200
        finally:
            await client.close()

    asyncio.run(go())


def test_zeromq_to_websocket(tmp_path):
    from stream.publish import ZmqPublisher

    async def go() -> None:
        with ZmqPublisher("tcp://127.0.0.1:*") as pub:
            cfg = DashboardConfig(endpoints=(pub.endpoint,), push_s=0.02)
            st = DashboardState()
            client = TestClient(TestServer(make_app(cfg, st)))
            await client.start_server()
            try:
                loop = asyncio.get_running_loop()
                ok = await loop.run_in_executor(None, pub.wait_for_subscribers, 1, 10.0)
                assert ok
                pub.send(
                    "status.cam",
                    {
                        "schema": "pfes.status/1",
                        "stream": "cam",
                        "fps": 30.0,
                        "thresholds": {"open": 0.5, "close": 0.3},
                    },
                )
                pub.send("event.cam", _ev(0, time.time()).body)
                ws = await client.ws_connect("/ws")
                got: dict = {"events": [], "status": {}}
                end = time.monotonic() + 10
                while (not got["events"] or not got["status"]) and time.monotonic() < end:
                    pub.poll()
                    m = json.loads((await ws.receive(timeout=5)).data)
                    got["events"] += m["events"]
                    got["status"].update(m["status"])
                assert got["events"][0]["seq"] == 0
                assert got["status"]["cam"]["thresholds"]["open"] == 0.5
                await ws.close()
            finally:
                await client.close()

    asyncio.run(go())


def test_other_web_pages_are_kept_out():
    cfg = DashboardConfig(endpoints=("tcp://127.0.0.1:1",))

    async def go() -> None:
        client = await _client(cfg, DashboardState())
        try:
            host = f"127.0.0.1:{client.port}"
            assert (await client.get("/", headers={"Host": "evil.example:8080"})).status == 403
            assert (
                await client.get("/", headers={"Host": f"localhost:{client.port}"})
            ).status == 200
            with pytest.raises(WSServerHandshakeError) as e:
                await client.ws_connect("/ws", headers={"Origin": "http://evil.example"})
            assert e.value.status == 403
            ws = await client.ws_connect("/ws", headers={"Origin": f"http://{host}"})
            assert json.loads((await ws.receive()).data)["type"] == "full"
            await ws.close()
        finally:
            await client.close()

    asyncio.run(go())
