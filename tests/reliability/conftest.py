"""Shared pieces of the reliability tests: a hostile-input server, and what "nothing changed" means."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dispel.conftest import TIFFSTORE, stack, write_stack
from tests.helpers import Server, ServerLauncher, write_htpasswd
from tests.reliability import rawhttp

KEEP = b"the file every request is checked against"
ADMIN_TOKEN = "admin-token-for-the-hostile-tests-0123456789"
SEED_STACK = "tiffstore/312/20181129.tif"


@dataclass
class Env:
    """A running davgate with local mounts /data and /archive, /source and /dispel, and a folder outside."""

    server: Server
    base: Path
    data: Path
    archive: Path
    outside: Path
    cache: Path
    state: Path

    @property
    def url(self) -> str:
        return self.server.url

    def send(self, method: str, path: str, headers=None, body: bytes = b"", **kwargs) -> rawhttp.Reply:
        return rawhttp.send(self.url, method, path, headers, body, **kwargs)

    def snapshot(self) -> dict:
        """Every file, folder and link of the mounts, the outside folder and the cache, and the state store."""
        found: dict = {}
        for folder in (self.data, self.archive, self.outside, self.cache):
            for path in sorted([folder, *folder.rglob("*")]):
                found[str(path)] = describe(path)
        found["state"] = state_rows(self.state)
        return found

    @contextlib.contextmanager
    def unchanged(self) -> Iterator[None]:
        """Nothing on disk or in the state store changes in the block, and the server serves on."""
        before = self.snapshot()
        yield
        after = self.snapshot()
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"changed: {changed[:10]}"
        self.assert_serving()

    def assert_serving(self) -> None:
        reply = self.send("GET", "/data/keep.txt")
        assert reply.status == 200 and reply.body == KEEP, reply.status


def describe(path: Path) -> tuple:
    if path.is_symlink():
        return ("link", os.readlink(path))
    if path.is_dir():
        return ("folder",)
    data = path.read_bytes()
    return ("file", len(data), hashlib.sha256(data).hexdigest())


def state_rows(path: Path) -> tuple:
    if not path.exists():
        return ()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        locks = db.execute("SELECT token, root FROM locks ORDER BY token").fetchall()
        props = db.execute("SELECT url, name, value FROM properties ORDER BY url, name").fetchall()
    return tuple(locks), tuple(props)


def assert_refused(reply: rawhttp.Reply, *statuses: int) -> None:
    """A 4xx (one of ``statuses`` if given) whose body gives a reason."""
    assert 400 <= reply.status < 500, (reply.status, reply.text[:300])
    if statuses:
        assert reply.status in statuses, (reply.status, reply.text[:300])
    assert reply.text.strip(), "a refusal without a reason"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("hostile")
    folders = {name: base / name for name in ("data", "archive", "outside", "source", "templates", "cache")}
    for folder in folders.values():
        folder.mkdir()
    (folders["data"] / "keep.txt").write_bytes(KEEP)
    (folders["outside"] / "secret.txt").write_text("root:x:0:0:outside the mount\n")
    (folders["data"] / "out").symlink_to(folders["outside"])
    (folders["data"] / "secret-link.txt").symlink_to(folders["outside"] / "secret.txt")
    (folders["templates"] / "tiffstore.yaml").write_text(TIFFSTORE.read_text())
    write_stack(folders["source"] / SEED_STACK, stack(1, 3, 200, 300), tile=(64, 64))
    config = {
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd")},
        "mounts": {
            "/data": {"type": "local", "root": folders["data"]},
            "/archive": {"type": "local", "root": folders["archive"]},
            "/source": {"type": "local", "root": folders["source"], "readonly": True},
            "/dispel": {"type": "dispel", "templates": folders["templates"], "source": "/source", "workers": 1},
        },
        "state": {"type": "sqlite", "path": base / "state.db"},
        "cache": {"type": "local", "root": folders["cache"]},
        "server": {"max_xml_body": 64 * 1024},
        "api": {"admin_token": ADMIN_TOKEN},
    }
    launcher = ServerLauncher(base / "servers")
    server = launcher(config)
    env = Env(
        server, base, folders["data"], folders["archive"], folders["outside"], folders["cache"], base / "state.db"
    )
    env.assert_serving()  # its one worker has answered, so it has made what it makes at start (the cache's staging folder)
    yield env
    launcher.stop_all()
