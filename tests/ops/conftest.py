"""Fixtures for the operations tests: in-process apps, with mounts that fail on purpose."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from davgate import errors
from davgate.app import Application, build_app, build_mounts
from davgate.config import parse_config
from davgate.providers.local import LocalMount
from tests.helpers import write_htpasswd


class OutageMount(LocalMount):
    """A local folder whose backend is "down" while ``down`` is set (503 on every call)."""

    def __init__(self, path: str, options: Any) -> None:
        super().__init__(path, options)
        self.down = threading.Event()

    def stat(self, rel: str):
        if self.down.is_set():
            raise errors.Unavailable(rel, "backend stopped by the test")
        return super().stat(rel)


SPECIAL = {"outage": OutageMount}


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Application]]:
    """``make_app(special={"/x": "outage"}, mounts={"/y": section}, **sections)``: /data, special local mounts, others."""
    apps: list[Application] = []
    htpasswd = write_htpasswd(tmp_path / "htpasswd")

    def make(
        special: dict[str, str] | None = None, mounts: dict[str, Any] | None = None, **sections: Any
    ) -> Application:
        paths = ["/data", *(special or {})]
        mounts = dict(mounts or {})
        for path in paths:
            root = tmp_path / "mounts" / path.strip("/")
            root.mkdir(parents=True, exist_ok=True)
            mounts[path] = {"type": "local", "root": str(root)}
        data: dict[str, Any] = {
            "auth": {"htpasswd": str(htpasswd)},
            "mounts": mounts,
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        }
        for name, value in sections.items():
            data[name] = {**data.get(name, {}), **value}
        config = parse_config(data, "test")
        built = build_mounts(config)
        for path, kind in (special or {}).items():
            built[path] = SPECIAL[kind](path, config.mounts[path])
        app = build_app(config, built)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
