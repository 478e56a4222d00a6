"""Fixtures for in-process tests: a davgate app over local mounts in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from davgate.app import Application, build_app
from davgate.config import parse_config
from tests.helpers import write_htpasswd
from tests.wsgi.client import Client

MOUNTS = ("/data", "/archive", "/projects/a", "/projects/b")


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Application]]:
    """``make_app(**sections)``: an app with local mounts MOUNTS, htpasswd auth, SQLite state."""
    apps: list[Application] = []
    htpasswd = write_htpasswd(tmp_path / "htpasswd")

    def make(**sections: Any) -> Application:
        mounts = {}
        for path in MOUNTS:
            root = tmp_path / "mounts" / path.strip("/").replace("/", "_")
            root.mkdir(parents=True, exist_ok=True)
            mounts[path] = {"type": "local", "root": str(root)}
        data = {
            "auth": {"htpasswd": str(htpasswd)},
            "mounts": mounts,
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        }
        for name, value in sections.items():
            data[name] = {**data.get(name, {}), **value}
        app = build_app(parse_config(data, "test"))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def client(make_app) -> Client:
    return Client(make_app())


@pytest.fixture
def mount_root(tmp_path: Path) -> Callable[[str], Path]:
    """The folder behind a mount path, e.g. mount_root("/data")."""
    return lambda path: tmp_path / "mounts" / path.strip("/").replace("/", "_")
