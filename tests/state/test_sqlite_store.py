"""State store tests: a contract every backend inherits, run here on SQLite.

A backend's tests subclass :class:`StateStoreContract` and give one
``store_spec(tmp_path)`` (the ``open_store`` kind and options); the suite
covers the store itself, the WsgiDAV adapters on top of it, and other
processes sharing it.
"""

from __future__ import annotations

import io
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.util import setup_testing_defaults

import pytest
from wsgidav.dav_error import HTTP_LOCKED, DAVError
from wsgidav.lock_man.lock_manager import LockManager
from wsgidav.lock_man.lock_storage import LockStorageDict
from wsgidav.wsgidav_app import WsgiDAVApp

from davgate.state import LockConflict, LockRecord, StateStore, StateStoreError, open_store
from davgate.state.sqlite import SCHEMA, SqliteStateStore
from davgate.state.wsgidav_adapters import StoreLockStorage, StorePropertyManager
from tests.state.suite import Spec, StoreSuite

if TYPE_CHECKING:
    from tests.state.conftest import Peer

OWNER = b"<owner xmlns='DAV:'>tester</owner>"
LOCK_KEYS = {"root", "type", "scope", "depth", "owner", "timeout", "principal", "expire", "token"}


def record(
    root: str,
    scope: str = "exclusive",
    depth: str = "0",
    *,
    token: str | None = None,
    expire: float | None = None,
    principal: str = "alice",
) -> LockRecord:
    return LockRecord(
        token=token or f"opaquelocktoken:{uuid.uuid4().hex}",
        root=root,
        type="write",
        scope=scope,
        depth=depth,
        owner=OWNER,
        principal=principal,
        timeout=600.0,
        expire=time.time() + 600 if expire is None else expire,
    )


def lock_request(scope: str = "exclusive", depth: str = "0", timeout: float = 600, principal: str = "alice") -> dict:
    """A lock dict as WsgiDAV's LockManager hands it to ``storage.create``."""
    return {
        "type": "write",
        "scope": scope,
        "depth": depth,
        "owner": OWNER,
        "timeout": timeout,
        "principal": principal,
    }


def acquire(manager: LockManager, url: str, principal: str, scope: str = "exclusive", depth: str = "0") -> dict:
    return manager.acquire(
        url=url,
        lock_type="write",
        lock_scope=scope,
        lock_depth=depth,
        lock_owner=OWNER,
        timeout=600,
        principal=principal,
        token_list=[],
    )


class StateStoreContract(StoreSuite):
    """What every state backend must do. Subclasses define :meth:`store_spec`."""

    @pytest.fixture
    def storage(self, store: StateStore) -> StoreLockStorage:
        return StoreLockStorage(store)

    @pytest.fixture
    def manager(self, storage: StoreLockStorage) -> LockManager:
        return LockManager(storage)

    @pytest.fixture
    def props(self, store: StateStore) -> StorePropertyManager:
        return StorePropertyManager(store)

    # --- lock records -------------------------------------------------------

    def test_lock_round_trip(self, store: StateStore) -> None:
        lock = record("/a/b")
        store.create_lock(lock)
        assert store.get_lock(lock.token) == lock
        assert isinstance(store.get_lock(lock.token).owner, bytes)  # type: ignore[union-attr]
        assert store.get_lock("opaquelocktoken:missing") is None

    def test_expired_lock_is_absent_and_purged(self, store: StateStore) -> None:
        old = record("/a", expire=time.time() - 1)
        store.create_lock(old)
        assert store.get_lock(old.token) is None
        assert store.list_locks("/a", include_root=True, include_children=True) == []
        assert store.refresh_lock(old.token, timeout=60, expire=time.time() + 60) is None
        store.create_lock(record("/a"))  # an expired lock conflicts with nothing
        assert store.purge_expired_locks() == 0  # create purged it already
        assert store.delete_lock(old.token) is False

    def test_lock_without_expiry_lives(self, store: StateStore) -> None:
        lock = record("/a", expire=-1)
        store.create_lock(lock)
        assert store.purge_expired_locks() == 0
        assert store.get_lock(lock.token) == lock

    def test_refresh_and_delete(self, store: StateStore) -> None:
        lock = record("/a")
        store.create_lock(lock)
        refreshed = store.refresh_lock(lock.token, timeout=30.0, expire=lock.expire + 1000)
        assert refreshed is not None and (refreshed.timeout, refreshed.expire) == (
            30.0,
            lock.expire + 1000,
        )
        assert store.get_lock(lock.token) == refreshed
        assert store.delete_lock(lock.token) is True
        assert store.delete_lock(lock.token) is False
        assert store.get_lock(lock.token) is None

    def test_list_locks(self, store: StateStore) -> None:
        for root in ("/", "/a", "/a/b", "/a/b/c", "/ab", "/a/bc"):
            store.create_lock(record(root, "shared"))

        def roots(root: str, include_root: bool, include_children: bool) -> list[str]:
            found = store.list_locks(root, include_root=include_root, include_children=include_children)
            return sorted(lock.root for lock in found)

        assert roots("/a/b", True, False) == ["/a/b"]
        assert roots("/a/b", False, True) == ["/a/b/c"]
        assert roots("/a/b", True, True) == ["/a/b", "/a/b/c"]
        assert roots("/a", False, True) == ["/a/b", "/a/b/c", "/a/bc"]
        assert roots("/", False, True) == ["/a", "/a/b", "/a/b/c", "/a/bc", "/ab"]
        assert roots("/nothing", True, True) == []

    @pytest.mark.parametrize(
        ("held", "wanted", "conflict"),
        [
            (("/a", "exclusive", "0"), ("/a", "exclusive", "0"), True),
            (("/a", "shared", "0"), ("/a", "shared", "0"), False),
            (("/a", "shared", "0"), ("/a", "exclusive", "0"), True),
            (("/a", "exclusive", "0"), ("/a", "shared", "0"), True),
            (("/a", "exclusive", "infinity"), ("/a/b/c", "exclusive", "0"), True),
            (("/", "exclusive", "infinity"), ("/x", "shared", "0"), True),
            (("/a", "exclusive", "0"), ("/a/b", "exclusive", "0"), False),
            (("/a/b", "exclusive", "0"), ("/a", "exclusive", "infinity"), True),
            (("/a/b", "exclusive", "0"), ("/a", "exclusive", "0"), False),
            (("/a/b", "exclusive", "0"), ("/ab", "exclusive", "infinity"), False),
            (("/ab", "exclusive", "0"), ("/a", "exclusive", "infinity"), False),
            (("/a", "shared", "infinity"), ("/a/b", "shared", "infinity"), False),
        ],
    )
    def test_lock_conflicts(self, store: StateStore, held: tuple, wanted: tuple, conflict: bool) -> None:
        store.create_lock(record(*held))
        new = record(*wanted)
        if conflict:
            with pytest.raises(LockConflict) as caught:
                store.create_lock(new)
            assert caught.value.conflicting_roots == [held[0]]
            assert store.get_lock(new.token) is None
        else:
            store.create_lock(new)
            assert store.get_lock(new.token) == new

    def test_unicode_lock_roots(self, store: StateStore) -> None:
        for root in ("/dätä/日本", "/dätä/日本/ファイル.txt", "/d%C3%A4t%C3%A4/x y"):
            store.create_lock(record(root, "shared"))
        children = store.list_locks("/dätä", include_root=False, include_children=True)
        assert sorted(lock.root for lock in children) == ["/dätä/日本", "/dätä/日本/ファイル.txt"]
        with pytest.raises(LockConflict):
            store.create_lock(record("/dätä", depth="infinity"))

    def test_clear_locks(self, store: StateStore) -> None:
        store.create_lock(record("/a"))
        store.clear_locks()
        assert store.list_locks("/", include_root=True, include_children=True) == []

    # --- WsgiDAV lock storage -------------------------------------------------

    def test_storage_create_completes_the_lock_like_wsgidav(self, storage: StoreLockStorage) -> None:
        reference = LockStorageDict()
        reference.open()
        ours, theirs = lock_request(timeout=-1), lock_request(timeout=-1)
        assert storage.create("/a/b/", ours) is ours
        reference.create("/a/b/", theirs)
        assert set(ours) == set(theirs) == LOCK_KEYS
        for key in LOCK_KEYS - {"token", "expire", "timeout"}:
            assert ours[key] == theirs[key] and type(ours[key]) is type(theirs[key]), key
        assert ours["timeout"] == theirs["timeout"]  # seconds; WsgiDAV mixes int and float
        assert ours["root"] == "/a/b" and ours["timeout"] == StoreLockStorage.LOCK_TIME_OUT_MAX
        assert ours["token"].startswith("opaquelocktoken:")
        assert storage.get(ours["token"]) == ours

    def test_storage_refresh_get_delete(self, storage: StoreLockStorage) -> None:
        lock = storage.create("/a", lock_request())
        refreshed = storage.refresh(lock["token"], timeout=60)
        assert refreshed["timeout"] == 60 and refreshed["expire"] <= time.time() + 60
        assert storage.refresh(lock["token"], timeout=-1)["timeout"] == StoreLockStorage.LOCK_TIME_OUT_MAX
        assert storage.delete(lock["token"]) is True
        assert storage.get(lock["token"]) is None
        with pytest.raises(ValueError):
            storage.refresh(lock["token"], timeout=60)

    def test_storage_get_lock_list(self, storage: StoreLockStorage) -> None:
        a = storage.create("/a", lock_request("shared"))
        b = storage.create("/a/b", lock_request("shared"))
        assert storage.get_lock_list("/a/", include_root=True, include_children=False, token_only=True) == [a["token"]]
        children = storage.get_lock_list("/a", include_root=False, include_children=True, token_only=False)
        assert children == [b]
        both = storage.get_lock_list("/a", include_root=True, include_children=True, token_only=True)
        assert sorted(both) == sorted([a["token"], b["token"]])

    def test_storage_refuses_conflict_with_http_locked(self, storage: StoreLockStorage) -> None:
        storage.create("/col", lock_request(depth="infinity"))
        with pytest.raises(DAVError) as caught:
            storage.create("/col/doc", lock_request(principal="bob"))  # as if LockManager's check was raced
        assert caught.value.value == HTTP_LOCKED
        assert caught.value.err_condition.hrefs == ["/col"]

    def test_depth_infinity_lock_covers_children(self, manager: LockManager) -> None:
        lock = acquire(manager, "/col/", "alice", depth="infinity")
        with pytest.raises(DAVError) as caught:
            acquire(manager, "/col/sub/doc.txt", "bob")
        assert caught.value.value == HTTP_LOCKED
        assert [x["token"] for x in manager.get_indirect_url_lock_list("/col/sub/doc.txt")] == [lock["token"]]
        with pytest.raises(DAVError):
            manager.check_write_permission(url="/col/doc", depth="0", token_list=[], principal="bob")
        manager.check_write_permission(url="/col/doc", depth="0", token_list=[lock["token"]], principal="alice")
        acquire(manager, "/other", "bob")

    def test_threads_racing_for_one_lock(self, store: StateStore) -> None:
        winners: list[str] = []
        refused: list[int] = []
        start = threading.Barrier(8)

        def take() -> None:
            storage = StoreLockStorage(store)  # one LockManager per "process"
            start.wait()
            try:
                winners.append(storage.create("/race", lock_request())["token"])
            except DAVError as error:
                refused.append(error.value)

        threads = [threading.Thread(target=take) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1 and refused == [HTTP_LOCKED] * 7

    def test_any_live_lock(self, store: StateStore) -> None:
        assert not store.any_live_lock()
        storage = StoreLockStorage(store)
        token = storage.create("/a", lock_request())["token"]
        assert store.any_live_lock()
        storage.delete(token)
        assert not store.any_live_lock()
        storage.create("/b", lock_request(timeout=1))
        token = storage.get_lock_list("/b", include_root=True, include_children=False, token_only=True)[0]
        store.refresh_lock(token, timeout=1, expire=time.time() - 1)  # expired
        assert not store.any_live_lock()

    # --- dead properties ---------------------------------------------------------

    def test_properties_crud(self, props: StorePropertyManager) -> None:
        assert props.get_properties("/a") == [] and props.get_property("/a", "{x:}p") is None
        props.write_property("/a", "{x:}p", b"<p xmlns='x:'>1</p>")
        props.write_property("/a", "{x:}q", "<q xmlns='x:'>text</q>")
        props.write_property("/a", "{x:}p", b"<p xmlns='x:'>2</p>")
        props.write_property("/a", "{x:}dry", b"<dry/>", dry_run=True)
        assert sorted(props.get_properties("/a")) == ["{x:}p", "{x:}q"]
        assert props.get_property("/a", "{x:}p") == b"<p xmlns='x:'>2</p>"
        assert props.get_property("/a", "{x:}q") == "<q xmlns='x:'>text</q>"
        props.remove_property("/a", "{x:}p", dry_run=True)
        props.remove_property("/a", "{x:}p")
        props.remove_property("/a", "{x:}missing")
        assert props.get_properties("/a") == ["{x:}q"]

    def test_remove_properties_is_not_recursive(self, props: StorePropertyManager) -> None:
        props.write_property("/a/", "{x:}p", b"1")
        props.write_property("/a/b", "{x:}p", b"2")
        props.remove_properties("/a/")
        assert props.get_properties("/a/") == [] and props.get_properties("/a/b") == ["{x:}p"]

    def test_properties_of_many_urls_at_once(self, props: StorePropertyManager) -> None:
        for url in ("/col/", "/col/b", "/col/sub/", "/col/sub/c", "/colour"):
            props.write_property(url, "{x:}p", url.encode())
        props.write_property("/col/b", "{x:}q", "<q xmlns='x:'>text</q>")
        assert props.properties_of(["/col/", "/col/b", "/col/none", "/col/sub/"]) == {
            "/col/": {"{x:}p": b"/col/"},
            "/col/b": {"{x:}p": b"/col/b", "{x:}q": "<q xmlns='x:'>text</q>"},
            "/col/sub/": {"{x:}p": b"/col/sub/"},
        }
        many = [f"/many/{i}" for i in range(1234)]  # more than one batch
        for url in many[::100]:
            props.write_property(url, "{x:}p", b"1")
        assert sorted(props.properties_of(many)) == sorted(many[::100])
        assert props.properties_of([]) == {}

    def test_copy_properties(self, props: StorePropertyManager) -> None:
        props.write_property("/src", "{x:}p", b"1")
        props.write_property("/dest", "{x:}old", b"0")
        props.write_property("/keep", "{x:}old", b"0")
        props.copy_properties("/src", "/dest")
        props.copy_properties("/none", "/keep")  # nothing to copy: dest keeps its own
        assert props.get_properties("/dest") == ["{x:}p"] and props.get_property("/src", "{x:}p") == b"1"
        assert props.get_properties("/keep") == ["{x:}old"]

    def test_move_properties_without_children(self, props: StorePropertyManager) -> None:
        props.write_property("/a", "{x:}p", b"1")
        props.write_property("/a/b", "{x:}p", b"2")
        props.move_properties("/a", "/z", with_children=False)
        assert props.get_properties("/a") == [] and props.get_property("/z", "{x:}p") == b"1"
        assert props.get_property("/a/b", "{x:}p") == b"2"

    def test_move_properties_with_children(self, props: StorePropertyManager) -> None:
        for url in ("/col/", "/col/b", "/col/sub/", "/col/sub/c", "/colour"):
            props.write_property(url, "{x:}p", url.encode())
        props.write_property("/new/b", "{x:}stale", b"gone")
        props.move_properties("/col/", "/new/", with_children=True)
        moved = {url: props.get_property(url, "{x:}p") for url in ("/new/", "/new/b", "/new/sub/", "/new/sub/c")}
        assert moved == {
            "/new/": b"/col/",
            "/new/b": b"/col/b",
            "/new/sub/": b"/col/sub/",
            "/new/sub/c": b"/col/sub/c",
        }
        assert props.get_properties("/new/b") == ["{x:}p"]
        assert props.get_properties("/col/") == props.get_properties("/col/sub/c") == []
        assert props.get_property("/colour", "{x:}p") == b"/colour"

    def test_unicode_properties(self, props: StorePropertyManager) -> None:
        value = "<n xmlns='urn:ü'>naïve 日本</n>".encode()
        for url in ("/dätä/ファイル.txt", "/d%C3%A4t%C3%A4/x%20y"):
            props.write_property(url, "{urn:ü}n", value)
            assert props.get_property(url, "{urn:ü}n") == value
        props.move_properties("/dätä", "/ziel", with_children=True)
        assert props.get_properties("/ziel/ファイル.txt") == ["{urn:ü}n"]

    # --- WsgiDAV end to end ----------------------------------------------------------

    def test_two_apps_share_locks_and_properties(self, tmp_path: Path, store: StateStore) -> None:
        (tmp_path / "share").mkdir()
        (tmp_path / "share" / "doc.txt").write_bytes(b"hello")
        with self.make_store(tmp_path) as other:
            first, second = dav_app(tmp_path / "share", store), dav_app(tmp_path / "share", other)
            status, headers, _ = call(first, "LOCK", "/doc.txt", LOCKINFO)
            assert status == 200
            assert call(second, "LOCK", "/doc.txt", LOCKINFO)[0] == 423
            assert call(second, "PROPPATCH", "/doc.txt", PROPPATCH)[0] == 423
            assert call(first, "PROPPATCH", "/doc.txt", PROPPATCH, If=f"({headers['Lock-Token']})")[0] == 207
            status, _, body = call(second, "PROPFIND", "/doc.txt", PROPFIND, Depth="0")
            assert status == 207 and b"blue" in body

    # --- other processes ---------------------------------------------------------------

    @pytest.mark.timeout(120)
    def test_lock_taken_in_another_process_is_honoured(
        self, tmp_path: Path, manager: LockManager, start_peer: Callable[[Spec], Peer]
    ) -> None:
        peer = start_peer(self.store_spec(tmp_path))
        token = peer.call("acquire", url="/shared/doc.txt", principal="alice")
        assert [lock["token"] for lock in manager.get_url_lock_list("/shared/doc.txt")] == [token]
        with pytest.raises(DAVError) as caught:
            acquire(manager, "/shared/doc.txt", "bob")
        assert caught.value.value == HTTP_LOCKED
        with pytest.raises(DAVError):
            manager.check_write_permission(url="/shared/doc.txt", depth="0", token_list=[], principal="bob")
        peer.call("release", token=token)
        mine = acquire(manager, "/shared/", "bob", depth="infinity")
        assert peer.call("locks", url="/shared") == [mine["token"]]
        assert peer.call("acquire", url="/shared/doc.txt", principal="alice") == {"dav_error": HTTP_LOCKED}

    @pytest.mark.timeout(120)
    def test_properties_are_shared_between_processes(
        self, tmp_path: Path, props: StorePropertyManager, start_peer: Callable[[Spec], Peer]
    ) -> None:
        peer = start_peer(self.store_spec(tmp_path))
        peer.call("write_property", url="/dätä/a", name="{x:}colour", text="<c xmlns='x:'>grün</c>")
        assert props.get_property("/dätä/a", "{x:}colour") == "<c xmlns='x:'>grün</c>".encode()
        props.write_property("/dätä/b", "{x:}size", b"<s xmlns='x:'>7</s>")
        assert peer.call("get_property", url="/dätä/b", name="{x:}size") == [
            "bytes",
            "<s xmlns='x:'>7</s>",
        ]
        props.move_properties("/dätä", "/moved", with_children=True)
        assert peer.call("property_names", url="/moved/a") == ["{x:}colour"]
        assert peer.call("property_names", url="/dätä/a") == []

    @pytest.mark.timeout(180)
    @pytest.mark.parametrize("via", ["manager", "storage"])
    def test_processes_racing_for_one_exclusive_lock(
        self, tmp_path: Path, store: StateStore, start_peer: Callable[[Spec], Peer], via: str
    ) -> None:
        peers = [start_peer(self.store_spec(tmp_path)) for _ in range(6)]
        for number, peer in enumerate(peers):
            peer.send("acquire", url="/race/doc", principal=f"user{number}", via=via)
        answers = [peer.receive() for peer in peers]
        winners = [answer["ok"] for answer in answers if "ok" in answer]
        assert len(winners) == 1, answers
        assert [answer for answer in answers if "ok" not in answer] == [{"dav_error": HTTP_LOCKED}] * 5
        assert [
            lock.token for lock in store.list_locks("/race/doc", include_root=True, include_children=False)
        ] == winners


class TestSqliteStateStore(StateStoreContract):
    def store_spec(self, tmp_path: Path) -> Spec:
        return "sqlite", {"path": str(tmp_path / "state" / "davgate.sqlite")}

    def test_file_is_wal_and_versioned(self, tmp_path: Path, store: StateStore) -> None:
        db = sqlite3.connect(tmp_path / "state" / "davgate.sqlite")
        try:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)
        finally:
            db.close()

    def test_reopening_keeps_records(self, tmp_path: Path) -> None:
        with self.make_store(tmp_path) as store:
            store.set_property("/a", "{x:}p", b"1")
        with self.make_store(tmp_path) as store:
            assert store.get_property("/a", "{x:}p") == b"1"

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "new.sqlite"
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA user_version = {len(SCHEMA) + 1}")
        db.close()
        with pytest.raises(StateStoreError, match="schema version"):
            SqliteStateStore(path)

    def test_closed_store_refuses_use(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.close()
        with pytest.raises(StateStoreError, match="closed"):
            store.get_lock("x")

    def test_close_while_another_thread_queries(self, tmp_path: Path) -> None:
        """The other thread finishes its statement and is refused on its next call; nothing crashes."""
        store = self.make_store(tmp_path)
        querying, refusals = threading.Event(), []

        def query_until_refused() -> None:
            while True:
                try:
                    store.get_property("/a", "{x:}p")
                except StateStoreError as error:
                    refusals.append(str(error))
                    return
                querying.set()

        thread = threading.Thread(target=query_until_refused)
        thread.start()
        assert querying.wait(10)
        store.close()
        thread.join(10)
        assert not thread.is_alive()
        assert refusals and "closed" in refusals[0]

    def test_store_opened_before_fork_refuses_use(
        self, store: SqliteStateStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store, "_pid", -1)  # as seen from a forked child
        with pytest.raises(StateStoreError, match="fork"):
            store.get_property("/a", "{x:}p")

    def test_busy_database_waits(self, tmp_path: Path, store: StateStore) -> None:
        holder = sqlite3.connect(tmp_path / "state" / "davgate.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        writer = threading.Thread(target=store.set_property, args=("/a", "{x:}p", b"1"))
        writer.start()
        writer.join(timeout=0.5)
        assert writer.is_alive()  # waiting, not failed
        holder.execute("COMMIT")
        holder.close()
        writer.join()
        assert store.get_property("/a", "{x:}p") == b"1"

    def test_threads_get_their_own_connections(self, store: SqliteStateStore) -> None:
        seen: list[sqlite3.Connection] = []
        thread = threading.Thread(target=lambda: seen.append(store._db()))
        thread.start()
        thread.join()
        assert seen[0] is not store._db()


def test_open_store_by_name(tmp_path: Path) -> None:
    with open_store("sqlite", path=tmp_path / "s.sqlite") as store:
        assert isinstance(store, SqliteStateStore)
    with pytest.raises(ValueError, match="unknown state store 'redis'"):
        open_store("redis")


# --- a tiny in-process WebDAV client -------------------------------------------------

LOCKINFO = b"""<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
<D:locktype><D:write/></D:locktype><D:owner>tester</D:owner></D:lockinfo>"""
PROPPATCH = b"""<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"""
PROPFIND = b"""<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z">
<D:prop><Z:colour/></D:prop></D:propfind>"""


def dav_app(root: Path, store: StateStore) -> WsgiDAVApp:
    return WsgiDAVApp(
        {
            "provider_mapping": {"/": str(root)},
            "simple_dc": {"user_mapping": {"*": True}},
            "lock_storage": StoreLockStorage(store),
            "property_manager": StorePropertyManager(store),
            "verbose": 1,
            "logging": {"enable": False},
        }
    )


def call(app: WsgiDAVApp, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/xml",
    }
    environ.update({f"HTTP_{key.upper()}": value for key, value in headers.items()})
    setup_testing_defaults(environ)
    response: list[Any] = []
    chunks = app(environ, lambda status, headers, exc_info=None: response.extend([status, dict(headers)]))
    try:
        content = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return int(response[0].split()[0]), response[1], content
