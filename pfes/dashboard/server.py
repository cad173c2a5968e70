"""The dashboard's web server: one static page, a WebSocket push, snapshot images.

::

    ZeroMQ SUB thread per endpoint --feed--> DashboardState --every push_s--> WebSocket clients
                                                           (one batched update per tick)

Routes: ``/`` the page, ``/static/...`` its script and style (package data, nothing from
the network), ``/ws`` the push (a ``full`` message on connect, then ``update`` messages),
``/snapshots/<name>`` JPEGs and clips from the ``--snapshots`` folders (file names only, nothing
outside those folders), ``/healthz`` a one-line JSON for probes.

Access: the server binds to loopback unless told otherwise; with a token every request must
carry it (``?token=`` once, which sets a cookie; or ``Authorization: Bearer``). Other web
pages open in the same browser are kept out: without a token (loopback only), a WebSocket
whose ``Origin`` is not this server is refused, and so is any request whose ``Host`` is not a
loopback name (DNS rebinding); with a token, its ``SameSite=Strict`` cookie does that.

Restarts: ZeroMQ SUB sockets reconnect by themselves; the page reconnects its WebSocket with
backoff and gets a fresh ``full`` message. A client whose send queue is full (a stalled tab)
gets its queue cleared and a ``full`` message instead of the backlog.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from pfes.dashboard.state import DashboardState
from pfes.errors import InputError

__all__ = ["DashboardConfig", "make_app", "serve", "is_loopback", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
COOKIE = "pfes_dashboard_token"
TOPICS = ("event.", "status.", "intensity.")


@dataclass(frozen=True)
class DashboardConfig:
    """endpoints: publishers to subscribe to; push_s: period of batched updates;
    snapshot_dirs: folders whose ``*.jpg`` / ``*.mp4`` files may be served; token: required if set."""

    endpoints: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    snapshot_dirs: tuple[Path, ...] = ()
    window_s: float = 60.0
    push_s: float = 0.1
    queue_messages: int = 50

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise InputError("the dashboard needs at least one --connect endpoint")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be 0..65535, got {self.port}")
        if not self.window_s > 0 or not self.push_s > 0:
            raise InputError("window and push period must be > 0")
        if self.token is not None and len(self.token) < 8:
            raise InputError("--token must be at least 8 characters")
        if not is_loopback(self.host) and not self.token:
            raise InputError(
                f"binding to {self.host} exposes the dashboard beyond this machine: "
                "give --token (or PFES_DASHBOARD_TOKEN), see docs/dashboard.md"
            )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Subscribers:
    """One thread per endpoint: SUB socket -> state.feed (ZeroMQ reconnects by itself)."""

    def __init__(self, endpoints: tuple[str, ...], state: DashboardState):
        from stream.publish import check_endpoint

        for ep in endpoints:
            check_endpoint(ep)
        self.endpoints = endpoints
        self.state = state
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(ep,), name=f"sub-{ep}", daemon=True)
            for ep in endpoints
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _run(self, endpoint: str) -> None:
        from stream.subscribe import Subscriber

        with Subscriber(endpoint, topics=TOPICS) as sub:
            while not self._stop.is_set():
                m = sub.recv(timeout_s=0.2)
                if m is not None:
                    self.state.feed(endpoint, m)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)


def _hostname(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` -> the host name or address alone."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _token_ok(request: web.Request, token: str) -> bool:
    given = (
        request.query.get("token")
        or request.cookies.get(COOKIE)
        or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    )
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def make_app(
    cfg: DashboardConfig, state: DashboardState | None = None, subscribe: bool = True
) -> web.Application:
    """The aiohttp application (``subscribe=False``: no ZeroMQ, feed ``state`` yourself)."""
    state = state or DashboardState(window_s=cfg.window_s)
    clients: set[asyncio.Queue] = set()

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if cfg.token is None and not is_loopback(_hostname(request.host)):
            # a loopback server is only ever addressed as localhost / 127.x / ::1: any other
            # Host is a web page that rebound its own name to this machine (DNS rebinding)
            raise web.HTTPForbidden(text="pfes dashboard: unexpected Host header\n")
        origin = request.headers.get("Origin")
        if (cfg.token is None and request.path == "/ws" and origin
                and urlsplit(origin).netloc != request.host):
            # browsers let any page open a WebSocket anywhere; only our own page may
            raise web.HTTPForbidden(text="pfes dashboard: cross-origin WebSocket refused\n")
        if cfg.token is None or request.path == "/healthz":
            return await handler(request)
        if not _token_ok(request, cfg.token):
            raise web.HTTPUnauthorized(
                text="pfes dashboard: a valid token is required (open the page as /?token=...)\n"
            )
        resp = await handler(request)
        if request.query.get("token") and not resp.prepared:
            resp.set_cookie(COOKIE, cfg.token, httponly=True, samesite="Strict")
        return resp

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "ok": True,
                "messages": state.messages,
                "events": state.event_count,
                "clients": len(clients),
            }
        )

    async def snapshot(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if (
            "/" in name
            or "\\" in name
            or name.startswith(".")
            or not name.endswith((".jpg", ".mp4"))
        ):
            raise web.HTTPNotFound()
        for d in cfg.snapshot_dirs:
            p = d / name
            if p.is_file():
                return web.FileResponse(p, headers={"Cache-Control": "max-age=3600"})
        raise web.HTTPNotFound()

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=10.0)
        await ws.prepare(request)
        q: asyncio.Queue = asyncio.Queue(maxsize=cfg.queue_messages)
        q.put_nowait(json.dumps(state.full(), separators=(",", ":")))
        clients.add(q)

        async def sender() -> None:
            while True:
                text = await q.get()
                await ws.send_str(text)

        task = asyncio.create_task(sender())
        try:
            async for msg in ws:  # the page sends nothing; this waits for the close
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            clients.discard(q)
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, ConnectionError):
                pass
        return ws

    async def pusher(app: web.Application) -> Any:
        async def loop() -> None:
            while True:
                await asyncio.sleep(cfg.push_s)
                upd = state.take_updates()
                if not clients:
                    continue
                text = json.dumps(upd, separators=(",", ":"))
                for q in list(clients):
                    try:
                        q.put_nowait(text)
                    except asyncio.QueueFull:  # a stalled page: start it over
                        while not q.empty():
                            q.get_nowait()
                        q.put_nowait(json.dumps(state.full(), separators=(",", ":")))

        subs = _Subscribers(cfg.endpoints, state) if subscribe else None
        if subs is not None:
            subs.start()
        task = asyncio.create_task(loop())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        if subs is not None:
            await asyncio.get_running_loop().run_in_executor(None, subs.stop)

    app = web.Application(middlewares=[auth])
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/snapshots/{name}", snapshot)
    app.router.add_static("/static/", STATIC_DIR)
    app.cleanup_ctx.append(pusher)
    return app


async def serve(cfg: DashboardConfig, ready: Any = None) -> None:
    """Serve until cancelled. ``ready(url)`` is called once the socket is bound."""
    app = make_app(cfg)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise InputError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}") from e
    try:
        host, port = runner.addresses[0][:2]
        if ":" in host:
            host = f"[{host}]"
        if ready is not None:
            ready(f"http://{host}:{port}/")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
