"""A real PostgreSQL for the state tests, started once per session.

``initdb`` makes a cluster in a temporary folder and ``pg_ctl start`` runs
it on a free loopback port, with its Unix socket in the same folder (``-k``),
so it touches nothing of the machine's own PostgreSQL. The server refuses to
run as root, so as root the folder belongs to the ``postgres`` account
(Debian's package makes it) and the commands run as that account
(``runuser``). Logins need the password of the cluster's one user.

Tests get a :class:`Postgres`: a fresh database each (:meth:`Postgres.new_database`)
and the server stopped and started again on the same port and data (an outage).
The multi-host tests start one of their own on another host (a network
namespace, tests/netns.py), listening on that host's address.
The binaries come from Debian's ``postgresql`` package; without them the
session fails, it does not skip.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.netns import Host

BIN_GLOB = "/usr/lib/postgresql/*/bin"
ACCOUNT = "postgres"  # who runs the server when the tests run as root
USER = "davgate"  # the cluster's superuser, for the tests
COMMAND_TIMEOUT = 120
# A throwaway cluster: durability traded for speed (CREATE DATABASE per test
# copies a template), and room for the contract suites' many stores.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


def bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries."""
    found = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=lambda path: int(path.parent.name))
    assert found, f"PostgreSQL is not installed (no {BIN_GLOB}); apt-get install postgresql"
    return found[-1]


def free_port() -> int:
    """A loopback port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Postgres:
    """A running server of ours: where it listens, how to log in, how to stop it."""

    folder: Path
    port: int
    password: str
    address: str = "127.0.0.1"
    host: Host | None = None  # the network namespace it runs in; None: this one

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        """The server's log (``pg_ctl -l``), readable by the tests."""
        return self.folder / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@{self.address}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its name."""
        name = f"davgate_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def set_database(self, name: str, settings: dict[str, str]) -> None:
        """``ALTER DATABASE name SET key = value``: what every new session in it starts with."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            for key, value in settings.items():
                statement = sql.SQL("ALTER DATABASE {} SET {} = {}")
                admin.execute(statement.format(sql.Identifier(name), sql.SQL(key), sql.Literal(value)))

    def drop_database(self, name: str) -> None:
        """Drop a test's database, ending any session still in it."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def start(self) -> None:
        """Start the server (again: same port, data and password); return when it accepts logins."""
        settings = {"listen_addresses": self.address, **SETTINGS}
        options = " ".join([f"-p {self.port}", f"-k {self.folder}", *(f"-c {k}={v}" for k, v in settings.items())])
        run_as_owner(
            self.folder, "pg_ctl", "start", "-w", "-D", self.data, "-l", self.log, "-o", options, host=self.host
        )

    def stop(self) -> None:
        """Stop the server at once, ending every session (the database going away)."""
        run_as_owner(self.folder, "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data, host=self.host)


def run_as_owner(folder: Path, program: str, *args: object, host: Host | None = None) -> None:
    """Run a PostgreSQL program as the folder's owner (never as root), on ``host`` if given."""
    command = [str(bin_dir() / program), *map(str, args)]
    if os.geteuid() == 0:
        command = ["runuser", "-u", pwd.getpwuid(folder.stat().st_uid).pw_name, "--", *command]
    if host is not None:
        command = host.command(*command)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False
    )
    if done.returncode != 0:
        log = folder / "server.log"
        tail = log.read_text()[-3000:] if log.exists() else ""
        raise RuntimeError(f"{program} failed ({done.returncode}):\n{done.stderr[-3000:]}\n{tail}")


def make_folder() -> Path:
    """A folder the server's account owns: as root, one the ``postgres`` account can reach."""
    folder = Path(tempfile.mkdtemp(prefix="davgate-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(ACCOUNT)
        os.chown(folder, account.pw_uid, account.pw_gid)
    return folder


def start(folder: Path, host: Host | None = None) -> Postgres:
    """initdb a cluster in ``folder`` and start it on a free port: on loopback, or on ``host``'s address.

    On another host, logins with the password are allowed from its subnet.
    """
    password = secrets.token_urlsafe(24)
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    shutil.chown(password_file, user=folder.stat().st_uid, group=folder.stat().st_gid)
    run_as_owner(
        folder, "initdb", "-D", folder / "data", "-U", USER, "--pwfile", password_file,
        "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
    )  # fmt: skip
    password_file.unlink()
    if host is not None:
        with (folder / "data" / "pg_hba.conf").open("a") as hba:
            hba.write("host all all samenet scram-sha-256\n")
    server = Postgres(folder, free_port(), password, *((host.address, host) if host else ()))
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's PostgreSQL server; stopped and its folder removed at the end."""
    folder = make_folder()
    try:
        server = start(folder)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
