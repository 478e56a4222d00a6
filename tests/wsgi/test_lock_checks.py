"""The write check against locks: one query while nothing is locked, WsgiDAV's full check otherwise."""

from __future__ import annotations

import pytest

from davgate.app import Application
from davgate.lock_checks import QuickLockManager
from davgate.state.sqlite import SqliteStateStore
from tests.wsgi.client import Client

LOCK_BODY = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
)


@pytest.fixture
def app(make_app) -> Application:
    return make_app()


@pytest.fixture
def lock_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every lock query the SQLite store answers: the root of a listing, or "any" for the existence check."""
    asked: list[str] = []
    listing, existence = SqliteStateStore.list_locks, SqliteStateStore.any_live_lock

    def counted_listing(store, root, **options):
        asked.append(root)
        return listing(store, root, **options)

    def counted_existence(store):
        asked.append("any")
        return existence(store)

    monkeypatch.setattr(SqliteStateStore, "list_locks", counted_listing)
    monkeypatch.setattr(SqliteStateStore, "any_live_lock", counted_existence)
    return asked


def lock(client: Client, path: str, depth: str = "infinity") -> str:
    response = client.request("LOCK", path, LOCK_BODY, {"Depth": depth, "Timeout": "Second-60"})
    assert response.status == 200, response.text
    return response.headers["lock-token"]


def test_the_namespace_uses_the_quick_manager(app: Application) -> None:
    assert isinstance(app.wsgi.provider_map["/"].lock_manager, QuickLockManager)


def test_a_put_with_nothing_locked_asks_the_store_once_per_check(app: Application, lock_queries: list[str]) -> None:
    Client(app).request("MKCOL", "/data/a")
    lock_queries.clear()
    assert Client(app).request("PUT", "/data/a/f.txt", b"x").status == 201
    assert lock_queries == ["any", "any"]  # the permission check, then the write transaction


def test_a_locked_parent_still_refuses_a_put_without_its_token(app: Application) -> None:
    client = Client(app)
    client.request("MKCOL", "/data/a")
    token = lock(client, "/data/a")
    assert client.request("PUT", "/data/a/f.txt", b"x").status == 423
    assert client.request("PUT", "/data/a/f.txt", b"x", {"If": f"({token})"}).status == 201


def test_a_lock_elsewhere_lets_a_put_through(app: Application) -> None:
    client = Client(app)
    client.request("MKCOL", "/data/a")
    client.request("MKCOL", "/data/b")
    lock(client, "/data/a")
    assert client.request("PUT", "/data/b/f.txt", b"x").status == 201


def test_a_locked_child_refuses_deleting_its_folder(app: Application) -> None:
    client = Client(app)
    client.request("MKCOL", "/data/a")
    client.request("PUT", "/data/a/f.txt", b"x")
    lock(client, "/data/a/f.txt", depth="0")
    response = client.request("DELETE", "/data/a")
    assert response.status == 207 and b"423 Locked" in response.body


def test_a_locked_child_survives_deleting_its_folder(app: Application) -> None:
    client = Client(app)
    client.request("MKCOL", "/data/a")
    client.request("PUT", "/data/a/f.txt", b"x")
    client.request("PUT", "/data/a/g.txt", b"y")
    token = lock(client, "/data/a/f.txt", depth="0")
    assert client.request("DELETE", "/data/a").status == 207  # 423 for the locked member
    assert client.request("GET", "/data/a/f.txt").body == b"x"
    assert client.request("GET", "/data/a/g.txt").status == 404  # the rest went
    assert client.request("UNLOCK", "/data/a/f.txt", headers={"Lock-Token": token}).status == 204
    assert client.request("DELETE", "/data/a").status == 204
    assert client.request("GET", "/data/a/").status == 404


def test_an_unlocked_resource_is_writable_again(app: Application, lock_queries: list[str]) -> None:
    client = Client(app)
    client.request("PUT", "/data/f.txt", b"x")
    token = lock(client, "/data/f.txt", depth="0")
    assert client.request("PUT", "/data/f.txt", b"y").status == 423
    assert client.request("UNLOCK", "/data/f.txt", headers={"Lock-Token": token}).status == 204
    lock_queries.clear()
    assert client.request("PUT", "/data/f.txt", b"y").status == 204
    assert lock_queries == ["any", "any"]
