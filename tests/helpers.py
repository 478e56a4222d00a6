"""Test helpers: waiting on conditions, htpasswd files, real davgate processes."""

from __future__ import annotations

import base64
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import bcrypt
import yaml

T = TypeVar("T")

USERS: dict[str, str] = {"alice": "wonderland", "bob": "builder"}

LISTENING = re.compile(r"davgate: listening on (http://\S+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def basic(user: str, password: str | None = None) -> str:
    """An ``Authorization`` value for ``user`` (password from USERS unless given)."""
    token = f"{user}:{USERS[user] if password is None else password}".encode()
    return "Basic " + base64.b64encode(token).decode()


def race(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(0..count-1)`` in threads released together; their results in order."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(number: int) -> None:
        start.wait()
        results[number] = action(number)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Poll ``predicate`` until it returns a true value, and return that value.

    Raises ``AssertionError`` with ``message`` (a text, or a function giving
    one, e.g. a log tail) if ``timeout`` seconds pass first. Exceptions from
    the predicate propagate, so it can give up early.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g} s: {text}")
        time.sleep(interval)


def write_htpasswd(path: Path, users: Mapping[str, str] = USERS) -> Path:
    """Write an htpasswd file with bcrypt hashes (4 rounds: fast, still real)."""
    lines = [f"{user}:{hash_password(password)}\n" for user, password in users.items()]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Server:
    """A running ``davgate serve`` process; ``url`` has no trailing slash."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM; require exit code 0 and no process of its group left, in time."""
        deadline = time.monotonic() + timeout
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = None
        try:
            code = self.process.wait(timeout)
            wait_until(
                lambda: not group_members(self.process.pid),
                max(0.0, deadline - time.monotonic()),
            )
        except (subprocess.TimeoutExpired, AssertionError):
            self.kill()
            raise AssertionError(
                f"davgate (or a process it started) was still running {timeout:g} s "
                f"after SIGTERM (exit code {code}); killed.\n{tail(self.log_text())}"
            ) from None
        assert code == 0, f"davgate exited with {code} after SIGTERM:\n{tail(self.log_text())}"

    def kill(self) -> None:
        """SIGKILL the server and every process of its group."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        wait_until(lambda: not group_members(self.process.pid), STOP_TIMEOUT)


class ServerLauncher:
    """Starts davgate processes in their own folders under ``base``; stops them all."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.servers: list[Server] = []
        self.numbers = itertools.count()

    def __call__(
        self,
        config: dict[str, Any],
        *,
        workers: int = 1,
        extra_args: Iterable[str] = (),
        wrap: Iterable[str] = (),
    ) -> Server:
        """``wrap``: a command davgate runs under (e.g. ``unshare``, ``ip netns exec``), which must exec it in the same process."""
        folder = self.base / f"server-{next(self.numbers)}"
        folder.mkdir(parents=True)
        config_path = folder / "davgate.yaml"
        config_path.write_text(yaml.safe_dump(server_config(config, workers), sort_keys=False))
        log_path = folder / "davgate.log"
        command = [
            *wrap, sys.executable, "-m", "davgate", "serve",
            "--config", str(config_path), "--port", "0", *extra_args,
        ]  # fmt: skip
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=folder,
                env=dict(os.environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server("", process, log_path, config_path)
        try:
            server.url = wait_until(
                lambda: listening_url(server),
                timeout=START_TIMEOUT,
                message=lambda: f"davgate did not report listening:\n{tail(server.log_text())}",
            )
        except BaseException:
            server.kill()
            raise
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every server, then report every one that did not exit cleanly."""
        problems = []
        for server in self.servers:
            try:
                server.stop()
            except AssertionError as error:
                problems.append(str(error))
        assert not problems, "\n\n".join(problems)


def server_config(config: dict[str, Any], workers: int) -> dict[str, Any]:
    """The test's config as plain YAML data, bound to loopback with ``workers``."""
    data = plain(config)
    server = data.setdefault("server", {})
    server.setdefault("host", "127.0.0.1")
    server["workers"] = workers
    return data


def plain(value: Any) -> Any:
    """Paths become text, so tests may put ``Path`` objects in a config."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still alive (zombies do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def listening_url(server: Server) -> str | None:
    match = LISTENING.search(server.log_text())
    if match:
        return match.group(1).rstrip("/")
    code = server.process.poll()
    if code is not None:
        raise AssertionError(f"davgate exited with {code} before listening:\n{tail(server.log_text())}")
    return None
