"""ZeroMQ CURVE for the event publisher: encryption, and optionally a list of allowed clients.

Keys are ZeroMQ certificate files as ``zmq.auth.create_certificates`` writes them (``pfes
keys``): ``NAME.key`` holds the public key (safe to copy anywhere), ``NAME.key_secret`` the
public and the secret key (keep it private; written with mode 0600).

* The publisher (``pfes run --curve-secret server.key_secret``) encrypts everything it sends.
  With ``--curve-clients DIR`` only clients whose public ``.key`` file is in DIR may connect;
  without it, any client that knows the server's public key may (it is still encrypted).
* A subscriber (``pfes listen --curve-secret client.key_secret --curve-server server.key``)
  needs its own key pair and the server's public key. A client without the right keys gets no
  connection and therefore no message at all.

Authentication runs in pyzmq's ZAP handler thread (``zmq.auth.thread.ThreadAuthenticator``)
on the publisher's context.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfes.errors import DependencyError, InputError

__all__ = ["CurveServer", "CurveClient", "make_keys", "load_server", "load_client"]


def _zmq_auth() -> Any:
    import zmq
    import zmq.auth

    if not zmq.has("curve"):  # pragma: no cover - pyzmq wheels ship libsodium
        raise DependencyError(
            "this libzmq has no CURVE support: pip install --force-reinstall pyzmq"
        )
    return zmq.auth


@dataclass(frozen=True)
class CurveServer:
    """The publisher's key pair (z85 bytes) and the folder of allowed client keys (or None)."""

    public: bytes
    secret: bytes
    clients_dir: Path | None = None


@dataclass(frozen=True)
class CurveClient:
    """A subscriber's key pair and the publisher's public key (z85 bytes)."""

    public: bytes
    secret: bytes
    server_public: bytes


def make_keys(out_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` (mode 0600) in ``out_dir``; refuses to
    overwrite. Returns (public file, secret file)."""
    auth = _zmq_auth()
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"bad key name {name!r}; use a plain name such as 'server'")
    d = Path(out_dir)
    pub, sec = d / f"{name}.key", d / f"{name}.key_secret"
    for p in (pub, sec):
        if p.exists():
            raise InputError(f"{p} exists; remove it first or choose another --name")
    try:
        d.mkdir(parents=True, exist_ok=True)
        old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
        try:
            pub_s, sec_s = auth.create_certificates(d, name)
        finally:
            os.umask(old)
        os.chmod(pub_s, 0o644)
    except OSError as e:
        raise InputError(f"cannot write keys in {d}: {e.strerror or e}") from e
    return Path(pub_s), Path(sec_s)


def _load(path: str | os.PathLike, what: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    auth = _zmq_auth()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} not found: {p}")
    try:
        public, secret = auth.load_certificate(p)
    except (OSError, ValueError) as e:
        raise InputError(f"{what} {p} is not a ZeroMQ certificate ({e})") from e
    if need_secret and not secret:
        raise InputError(f"{what} {p} has no secret key; give the .key_secret file")
    if len(public) != 40 or (secret is not None and len(secret) != 40):
        raise InputError(f"{what} {p}: keys must be 40 z85 characters")
    return public, secret


def load_server(
    secret_file: str | os.PathLike, clients_dir: str | os.PathLike | None
) -> CurveServer:
    """The publisher's CURVE settings; InputError (exit 2) if a file is missing or malformed."""
    public, secret = _load(secret_file, "--curve-secret", need_secret=True)
    d = None
    if clients_dir is not None:
        d = Path(clients_dir)
        if not d.is_dir():
            raise InputError(f"--curve-clients {d} is not a folder of client .key files")
        keys = sorted(d.glob("*.key"))
        if not keys:
            raise InputError(f"--curve-clients {d} holds no .key files: no client could connect")
        for k in keys:
            _load(k, "client key", need_secret=False)
    return CurveServer(public, secret or b"", d)


def load_client(
    secret_file: str | os.PathLike, server_public_file: str | os.PathLike
) -> CurveClient:
    """A subscriber's CURVE settings; InputError (exit 2) if a file is missing or malformed."""
    public, secret = _load(secret_file, "--curve-secret", need_secret=True)
    server, _ = _load(server_public_file, "--curve-server", need_secret=False)
    return CurveClient(public, secret or b"", server)
