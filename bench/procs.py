"""Processes the benchmark starts: free ports, readiness, process trees, a clean stop.

Every server runs in a session of its own, so it and everything it forks
share one process group that can be stopped as a whole; nothing is ever
stopped by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server: its name, base URL, the root of its process tree."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    auth: tuple[str, str] | None = None  # Basic credentials, for davgate
    base: str = ""  # path prefix of the benchmark data, e.g. "/data" on davgate
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def data_url(self, rel: str) -> str:
        return f"{self.url}{self.base}/{rel.lstrip('/')}"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(
    name: str, command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Server:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return Server(name, process, log)


def wait_ready(
    server: Server, probe_url: str, headers: dict[str, str] | None = None, timeout: float = START_TIMEOUT
) -> None:
    """Wait until ``probe_url`` answers with a status below 500."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(probe_url, method="OPTIONS", headers=headers or {})
    while True:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} did not answer {probe_url} within {timeout:g} s:\n{server.log_tail()}")
        time.sleep(0.05)


def tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        children = children_of(pid)
        if children is None:
            continue
        found.append(pid)
        queue.extend(children)
    return found


def children_of(pid: int) -> list[int] | None:
    """The children of every thread of ``pid`` (a thread's children are listed under that thread)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    children = []
    for tid in threads:
        try:
            children += [int(child) for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return children


def owns_listener(root: int, port: int) -> bool:
    """True when a process in ``root``'s tree holds the socket listening on 127.0.0.1:``port``."""
    inodes = listening_inodes(port)
    for pid in tree(root):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return True
    return False


def listening_inodes(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop(server: Server, sig: int = signal.SIGTERM) -> None:
    """Stop a server and everything in its process group (its own session)."""
    process = server.process
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 5
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_members(process.pid):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if process.poll() is None:
        process.kill()
    process.wait()
