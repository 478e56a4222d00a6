"""A throwaway OpenSSH server for the sftp tests, run by the project's own scripts.

``scripts/sshd-up.sh`` starts it (installing openssh-server if missing) and
``scripts/sshd-down.sh`` stops exactly what it started. The session-scoped
:func:`sshd` fixture serves every sftp test; tests that stop, freeze or
re-key a server start one of their own with :func:`start_sshd`.

Enrolment needs a password login: :func:`local_user` creates a throwaway
local account with a random password (``useradd``, ``chpasswd``; root only)
and removes it, home folder included, at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UP = REPO / "scripts" / "sshd-up.sh"
DOWN = REPO / "scripts" / "sshd-down.sh"
SCRIPT_TIMEOUT = 600  # a first run may install openssh-server


@dataclass(frozen=True)
class LocalUser:
    name: str
    password: str
    home: Path


@dataclass
class Sshd:
    """A running sshd of ours: where it listens and how to log in."""

    folder: Path
    host: str
    port: int
    user: str
    key: Path  # the client's private key, authorised for ``user``
    host_key: Path  # the server's public host key
    known_hosts: Path  # a known_hosts file naming this server
    password_user: LocalUser | None = None
    pid: int = 0

    @property
    def allowance(self) -> str:
        """The server's host:port, for ``server.outbound_allow`` (that port only)."""
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop the listener and every session it forked (a host going down)."""
        subprocess.run(["bash", str(DOWN), str(self.folder)], check=True, timeout=60)

    def start(self) -> None:
        """Start it again: same port, same host key."""
        started = start_sshd(self.folder, self.password_user)
        self.pid = started.pid

    def processes(self) -> list[int]:
        """The listener and its sessions, by parent pid."""
        found, queue = [], [self.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
            except FileNotFoundError:  # a session that ended while we walked the tree
                continue
            queue.extend(int(child) for child in children.split())
        return found


def start_sshd(folder: Path, password_user: LocalUser | None = None) -> Sshd:
    command = ["bash", str(UP), str(folder)]
    if password_user is not None:
        command += ["--password-user", password_user.name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False)
    assert done.returncode == 0, f"sshd-up.sh failed ({done.returncode}):\n{done.stderr}"
    exports = dict(word.split("=", 1) for word in shlex.split(done.stdout) if "=" in word)
    return Sshd(
        folder=folder,
        host=exports["SSHD_HOST"],
        port=int(exports["SSHD_PORT"]),
        user=exports["SSHD_USER"],
        key=Path(exports["SSHD_KEY"]),
        host_key=Path(exports["SSHD_HOST_KEY"]),
        known_hosts=Path(exports["SSHD_KNOWN_HOSTS"]),
        password_user=password_user,
        pid=int(exports["SSHD_PID"]),
    )


@pytest.fixture(scope="session")
def local_user() -> Iterator[LocalUser]:
    """A throwaway local account that may log in with a password (for enrolment)."""
    if os.geteuid() != 0:
        pytest.fail("the sftp enrolment tests create a local user: run them as root")
    name = f"dg{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    home = Path("/home") / name
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        yield LocalUser(name, password, home)
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory, local_user: LocalUser) -> Iterator[Sshd]:
    """The tests' sshd: key login for the current user, password login for ``local_user``."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"), local_user)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[Sshd]:
    """An sshd for this test alone, which it may stop, freeze or re-key."""
    server = start_sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        signal_all(server.processes(), signal.SIGCONT)
        server.stop()


@contextlib.contextmanager
def frozen(server: Sshd) -> Iterator[None]:
    """The server and its sessions stopped (SIGSTOP) for the block: a host that takes connections and never answers."""
    processes = server.processes()
    signal_all(processes, signal.SIGSTOP)
    try:
        yield
    finally:
        signal_all(processes, signal.SIGCONT)


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a session that ended meanwhile
            os.kill(pid, signum)
