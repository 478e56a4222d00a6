"""``davgate serve`` tells a service manager when it is ready and when it stops.

A real datagram socket stands where systemd's would be: the server finds it
in ``NOTIFY_SOCKET`` as under ``Type=notify``, and sends ``READY=1`` once it
serves and ``STOPPING=1`` when SIGTERM arrives, from its main process only.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import USERS, ServerLauncher

AUTH = ("alice", USERS["alice"])
RECEIVE_TIMEOUT = 30.0


class Listener:
    """A datagram socket that records each message with the pid that sent it."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address if not address.startswith("@") else "\0" + address[1:])
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(RECEIVE_TIMEOUT)

    def receive(self) -> tuple[str, int]:
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(struct.unpack("3i", d)[0] for level, kind, d in ancillary if kind == socket.SCM_CREDENTIALS)
        return data.decode(), pid


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    address = str(tmp_path / "notify") if request.param == "path" else f"@davgate-test-{id(request)}"
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    receiver = Listener(address)
    yield receiver
    receiver.sock.close()


@pytest.mark.parametrize(("engine", "workers"), [("cheroot", 1), ("cheroot", 2), ("granian", 2)])
def test_ready_once_serving_and_stopping_on_sigterm_from_the_main_process(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, listener: Listener, engine: str, workers: int
) -> None:
    (tmp_path / "data").mkdir()
    server = serve(
        {
            "server": {"engine": engine},
            "auth": {"htpasswd": htpasswd_file},
            "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
            "state": {"type": "sqlite", "path": tmp_path / "state.db"},
        },
        workers=workers,
    )
    message, sender = listener.receive()
    assert message.splitlines()[0] == "READY=1"
    assert message.splitlines()[1].startswith("STATUS=listening on http://127.0.0.1:")
    assert sender == server.process.pid
    assert requests.request("PROPFIND", server.url + "/", auth=AUTH, headers={"Depth": "1"}, timeout=30).ok
    server.stop()
    assert listener.receive() == ("STOPPING=1", server.process.pid)
