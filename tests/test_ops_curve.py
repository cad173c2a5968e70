"""CURVE on the event publisher: the right client key receives, a wrong key or no key
receives nothing; ``pfes keys`` and the CLI options fail cleanly on bad files."""

from __future__ import annotations

import stat
import time

import pytest
from test_cli_errors import _fails

from pfes.cli import main
from stream.curve import load_client, load_server, make_keys
from stream.publish import ZmqPublisher
from stream.subscribe import Subscriber


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    make_keys(d / "server", "server")
    make_keys(d / "allowed", "alice")  # the publisher's list of clients: alice.key only
    (d / "allowed" / "alice.key_secret").rename(d / "alice.key_secret")
    make_keys(d / "other", "mallory")
    return d


def _receive(pub: ZmqPublisher, sub: Subscriber, seconds: float) -> list:
    got, end = [], time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        pub.send("event.cam", {"seq": i})
        i += 1
        m = sub.recv(timeout_s=0.02)
        if m is not None:
            got.append(m.body["seq"])
    return got


def _server(keys, clients=True):
    return load_server(keys / "server" / "server.key_secret", keys / "allowed" if clients else None)


def test_the_allowed_client_receives(keys):
    client = load_client(keys / "alice.key_secret", keys / "server" / "server.key")
    with (
        ZmqPublisher("tcp://127.0.0.1:*", curve=_server(keys)) as pub,
        Subscriber(pub.endpoint, ["event."], curve=client) as sub,
    ):
        assert pub.wait_for_subscribers(1, timeout_s=10)
        got = _receive(pub, sub, 1.0)
    assert len(got) > 10


@pytest.mark.parametrize("who", ["wrong key", "no key", "wrong server key"])
def test_a_client_without_the_right_key_receives_nothing(keys, who):
    curve = {
        "wrong key": load_client(
            keys / "other" / "mallory.key_secret", keys / "server" / "server.key"
        ),
        "no key": None,
        # an allowed client key, but it trusts another server's key
        "wrong server key": load_client(keys / "alice.key_secret", keys / "other" / "mallory.key"),
    }[who]
    with (
        ZmqPublisher("tcp://127.0.0.1:*", curve=_server(keys)) as pub,
        Subscriber(pub.endpoint, ["event."], curve=curve) as sub,
    ):
        assert not pub.wait_for_subscribers(1, timeout_s=1.0)  # its subscription never came
        assert _receive(pub, sub, 1.5) == []


def test_without_a_client_list_any_client_with_the_server_key_receives(keys):
    client = load_client(keys / "other" / "mallory.key_secret", keys / "server" / "server.key")
    with (
        ZmqPublisher("tcp://127.0.0.1:*", curve=_server(keys, clients=False)) as pub,
        Subscriber(pub.endpoint, ["event."], curve=client) as sub,
    ):
        assert pub.wait_for_subscribers(1, timeout_s=10)
        assert _receive(pub, sub, 1.0)


def test_pfes_keys_writes_a_private_secret_and_refuses_to_overwrite(capsys, tmp_path):
    assert main(["keys", "--out", str(tmp_path), "--name", "cam"]) == 0
    sec = tmp_path / "cam.key_secret"
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    assert (tmp_path / "cam.key").is_file()
    capsys.readouterr()
    _fails(capsys, ["keys", "--out", str(tmp_path), "--name", "cam"], 2, "exists")


def test_bad_key_files_are_one_line_errors(capsys, tmp_path, keys):
    junk = tmp_path / "junk.key_secret"
    junk.write_text("not a certificate\n")
    _fails(capsys, ["run", "--curve-secret", str(tmp_path / "nope")], 2, "not found")
    _fails(capsys, ["run", "--curve-secret", str(junk)], 2, "")
    _fails(
        capsys, ["run", "--curve-secret", str(keys / "server" / "server.key")], 2, "no secret key"
    )
    _fails(capsys, ["run", "--curve-clients", str(keys / "allowed")], 2, "needs --curve-secret")
    _fails(
        capsys,
        [
            "run",
            "--curve-secret",
            str(keys / "server" / "server.key_secret"),
            "--curve-clients",
            str(tmp_path),
        ],
        2,
        "holds no .key files",
    )
    _fails(capsys, ["listen", "--curve-secret", str(keys / "alice.key_secret")], 2, "needs both")
