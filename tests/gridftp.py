"""A throwaway globus-gridftp-server for the gridftp tests.

:func:`start_gridftp` starts one on a free loopback port, serving anonymous
FTP confined (``-restrict-paths``) to a folder of its own; with ``gsi`` it
serves GSI instead, with a CA, host and user certificates and a user proxy
made by :mod:`tests.gsi`. :meth:`GridftpServer.stop` stops exactly what it
started: the listener and the sessions it forked. The session fixture
:func:`gridftp` serves the contract suite; tests that stop a server start
their own.

The server's sessions run as ``nobody``: its folder is world-writable and
lives outside pytest's private temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SERVER = "/usr/sbin/globus-gridftp-server"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
SESSION_USER = "nobody"


@dataclass
class GridftpServer:
    """A running globus-gridftp-server of ours."""

    folder: Path  # its own files: log, certificates
    data: Path  # the only folder clients may reach
    port: int
    scheme: str = "ftp"
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return "localhost" if self.scheme == "gsiftp" else HOST

    def url(self, path: Path) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def new_root(self) -> Path:
        """An empty folder of the server's, writable by its sessions."""
        root = self.data / uuid.uuid4().hex
        root.mkdir(mode=0o777)
        root.chmod(0o777)
        return root

    def processes(self) -> list[int]:
        """The listener and its sessions, by parent pid."""
        found, queue = [], [self.process.pid] if self.process else []
        while queue:
            pid = queue.pop()
            found.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
            except FileNotFoundError:
                continue
            queue.extend(int(child) for child in children.split())
        return found

    def start(self) -> None:
        """Start it (again: same port, same folder)."""
        command = [SERVER, "-p", str(self.port), "-control-interface", HOST, "-data-interface", HOST]
        command += ["-restrict-paths", str(self.data), "-d", "error", "-l", str(self.folder / "server.log")]
        if self.scheme == "ftp":
            command += ["-aa", "-anonymous-user", SESSION_USER]
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_listening(self.port, self.process)

    def stop(self) -> None:
        """Stop the listener and every session it forked (a server going down)."""
        pids = self.processes()
        for pid in pids:
            signal_quietly(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process = None


def signal_quietly(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"globus-gridftp-server exited with {process.returncode}"
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"globus-gridftp-server is not listening on {HOST}:{port}")


def server_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="davgate-gridftp-"))
    folder.chmod(0o755)
    data = folder / "data"
    data.mkdir()
    data.chmod(0o777)
    return folder


def start_gridftp(gsi: bool = False) -> GridftpServer:
    """A new server on a free port; with ``gsi``, serving gsiftp with certificates of its own."""
    folder = server_folder()
    server = GridftpServer(folder=folder, data=folder / "data", port=free_port())
    if gsi:
        from tests.gsi import make_gsi

        server.scheme = "gsiftp"
        server.env = make_gsi(folder / "gsi", SESSION_USER).server_env()
    server.start()
    return server


def remove(server: GridftpServer) -> None:
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def gridftp() -> Iterator[GridftpServer]:
    """The tests' anonymous FTP server."""
    server = start_gridftp()
    try:
        yield server
    finally:
        remove(server)


@pytest.fixture(scope="session")
def gsiftp() -> Iterator[GridftpServer]:
    """The tests' GSI server; its CA folder is this process's X509_CERT_DIR while it runs (Globus reads only that)."""
    server = start_gridftp(gsi=True)
    before = os.environ.get("X509_CERT_DIR")
    os.environ["X509_CERT_DIR"] = server.env["X509_CERT_DIR"]
    try:
        yield server
    finally:
        if before is None:
            os.environ.pop("X509_CERT_DIR", None)
        else:
            os.environ["X509_CERT_DIR"] = before
        remove(server)


def proxy_of(server: GridftpServer) -> Path:
    """The user proxy a GSI server of :func:`start_gridftp` accepts."""
    return server.folder / "gsi" / "proxy.pem"
