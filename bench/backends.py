"""The real storage servers behind davgate's s3 and sftp mounts, by the project's scripts.

``scripts/rgw-up.sh`` / ``rgw-down.sh`` start and stop a one-node Ceph RGW in
a folder of its own (the daemons are recognised by that folder);
``scripts/sshd-up.sh`` / ``sshd-down.sh`` do the same for an OpenSSH server.
With ``--state postgres``, a PostgreSQL for davgate's state, started as the
tests start theirs (tests/postgres.py: ``initdb`` in a temporary folder, a
free loopback port, stopped and removed at the end).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
TIMEOUT = 600  # a fresh machine installs packages first


def run_script(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def parse_exports(text: str) -> dict[str, str]:
    words = (word for line in text.splitlines() if line.startswith("export ") for word in shlex.split(line)[1:])
    return dict(word.split("=", 1) for word in words if "=" in word)


@dataclass
class Backend:
    folder: Path
    env: dict[str, str]
    down: tuple[str, ...]

    def stop(self) -> None:
        run_script(*self.down)


def start_rgw(folder: Path, objectstore: str, store_gb: int) -> Backend:
    env = dict(os.environ, CEPH_OBJECTSTORE=objectstore, CEPH_STORE_GB=str(store_gb))
    exports = parse_exports(run_script("rgw-up.sh", str(folder), env=env))
    return Backend(folder, exports, ("rgw-down.sh", "--purge", str(folder)))


def start_sshd(folder: Path) -> Backend:
    exports = parse_exports(run_script("sshd-up.sh", str(folder)))
    return Backend(folder, exports, ("sshd-down.sh", str(folder)))


@dataclass
class StateDatabase:
    """A PostgreSQL of the run's own, with one database for davgate."""

    url: str
    stop: Callable[[], None]


def start_postgres() -> StateDatabase:
    from tests.postgres import make_folder, start  # the tests' way: one home for how it starts

    folder = make_folder()
    try:
        server = start(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def stop() -> None:
        try:
            server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return StateDatabase(server.url(server.new_database()), stop)
