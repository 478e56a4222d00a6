"""The Mongo state store: the state-store contract, on mongomock always and a real MongoDB when given.

No MongoDB server can be installed on these machines, so CI runs every
state-store contract on the Mongo backend against mongomock (a fake pymongo
client over one in-memory server per test), and again against a real
server whenever ``DAVGATE_TEST_MONGO_URL`` is set (each test in a database
of its own, dropped afterwards). Without that variable the real-server
variant is not generated at all, so it never shows up as a skip.

mongomock's server lives in one process, so for mongomock the contract's
"other process" peers are threads of this process, each with its own store
and client on the shared mock server (:class:`ThreadPeer`). Against a real
server the peers are real processes, as for SQLite. So these contract tests
are in-process only on mongomock: test_lock_taken_in_another_process_is_honoured,
test_properties_are_shared_between_processes and
test_processes_racing_for_one_exclusive_lock (each peer a separate store
with its own client, racing in its own thread).

Other modules mix :class:`MongoServer` into their contract classes the same way.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mongomock
import mongomock.store
import pymongo
import pytest
from wsgidav.dav_error import DAVError
from wsgidav.lock_man.lock_manager import LockManager

from davgate.state import LockConflict, StateStore, StateStoreError, open_store
from davgate.state.mongo import SCHEMA, MongoStateStore, locks
from davgate.state.wsgidav_adapters import StoreLockStorage, StorePropertyManager
from tests.state.conftest import Peer
from tests.state.suite import Spec
from tests.state.test_sqlite_store import StateStoreContract, record

REAL_URL = os.environ.get("DAVGATE_TEST_MONGO_URL", "")
SERVERS = ["mongomock", *(["mongodb"] if REAL_URL else [])]
MOCK_URL = "mongodb://mongomock.invalid:27017"


class MongoServer:
    """Mix into a contract class: its tests run once per server in :data:`SERVERS`."""

    server: str
    database: str
    mock: Any

    @pytest.fixture(autouse=True, params=SERVERS)
    def mongo_server(self, request: pytest.FixtureRequest) -> Iterator[str]:
        self.server = request.param
        self.database = f"davgate_test_{uuid.uuid4().hex[:16]}"
        self.mock = mongomock.store.ServerStore()
        self.mock_lock = threading.RLock()
        yield self.server
        if self.server == "mongodb":
            client: pymongo.MongoClient[dict[str, Any]]
            with pymongo.MongoClient(REAL_URL) as client:
                client.drop_database(self.database)

    def store_spec(self, tmp_path: Path) -> Spec:
        if self.server == "mongodb":
            return "mongo", {"url": REAL_URL, "database": self.database}
        return "mongo", {"url": MOCK_URL, "database": self.database, "client_factory": self.mock_client}

    def mock_client(self, url: str) -> Any:
        """A new client (as another process would make) on this test's mock server."""
        return Atomic(mongomock.MongoClient(url, _store=self.mock), self.mock_lock)

    @pytest.fixture
    def start_peer(self, start_peer: Callable[[Spec], Peer]) -> Iterator[Callable[[Spec], Peer]]:
        if self.server == "mongodb":
            yield start_peer  # real processes on the real server
            return
        started: list[ThreadPeer] = []

        def start(spec: Spec) -> Peer:
            peer = ThreadPeer(spec)
            started.append(peer)
            peer.wait_ready()
            return peer

        yield start
        statuses = [peer.stop() for peer in started]
        assert statuses == [0] * len(started), f"peers failed: {[p.failure for p in started]}"


class Atomic:
    """A mongomock client, database or collection whose every call is one step, as on a server.

    mongomock runs ``find_one_and_delete`` as a find, then a delete, so two
    threads can both find (and both return) one document; a MongoDB server
    runs each operation on a document atomically. One lock per mock server
    gives each call that atomicity; calls still interleave between each other.
    """

    def __init__(self, target: Any, lock: threading.RLock) -> None:
        self._target = target
        self._lock = lock

    def __getitem__(self, name: str) -> Atomic:
        return Atomic(self._target[name], self._lock)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def atomically(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return atomically


class ThreadPeer(Peer):
    """The contract's peer, answering the same commands from a thread of this process.

    Its store is opened from the spec like the peer process's, so it has
    its own client; answers go through JSON as the process's do.
    """

    def __init__(self, spec: Spec) -> None:
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.failure = ""
        self.thread = threading.Thread(target=self._serve, args=(spec,), daemon=True)
        self.thread.start()

    def send(self, op: str, **args: Any) -> None:
        self.inbox.put({"op": op, "args": args})

    def receive(self) -> dict[str, Any]:
        return self.outbox.get(timeout=60)

    def stop(self) -> int:
        self.inbox.put(None)
        self.thread.join(timeout=30)
        return 1 if self.thread.is_alive() or self.failure else 0

    def _serve(self, spec: Spec) -> None:
        try:
            kind, options = spec
            with open_store(kind, **options) as store:
                commands = _commands(store)
                self.outbox.put({"ready": True})
                while (command := self.inbox.get()) is not None:
                    try:
                        answer = {"ok": commands[command["op"]](**command["args"])}
                    except DAVError as error:
                        answer = {"dav_error": error.value}
                    self.outbox.put(json.loads(json.dumps(answer)))
        except Exception as error:  # noqa: BLE001 -- as a peer process would exit non-zero
            self.failure = repr(error)
            self.outbox.put({"failed": self.failure})


def _commands(store: Any) -> dict[str, Callable[..., Any]]:
    """The peer process's commands (tests/state/conftest.py PEER_SCRIPT), in-process."""
    storage = StoreLockStorage(store)
    manager = LockManager(storage)
    props = StorePropertyManager(store)

    def acquire(url: str, principal: str, scope: str = "exclusive", depth: str = "0", via: str = "manager") -> str:
        if via == "storage":  # skip LockManager's check: only the store can refuse
            lock = {"type": "write", "scope": scope, "depth": depth, "timeout": 600,
                    "owner": b"<owner>peer</owner>", "principal": principal}  # fmt: skip
            return storage.create(url, lock)["token"]
        return manager.acquire(url=url, lock_type="write", lock_scope=scope, lock_depth=depth,
                               lock_owner=b"<owner>peer</owner>", timeout=600, principal=principal,
                               token_list=[])["token"]  # fmt: skip

    def get_property(url: str, name: str) -> list[str] | None:
        value = props.get_property(url, name)
        if value is None:
            return None
        return [type(value).__name__, value.decode() if isinstance(value, bytes) else value]

    return {
        "acquire": acquire,
        "release": lambda token: manager.release(token),
        "locks": lambda url: [lock["token"] for lock in manager.get_url_lock_list(url)],
        "write_property": lambda url, name, text: props.write_property(url, name, text.encode()),
        "get_property": get_property,
        "property_names": lambda url: props.get_properties(url),
    }


class TestMongoStateStore(MongoServer, StateStoreContract):
    # --- granting locks without transactions ------------------------------------------

    def test_a_dead_announcement_blocks_for_its_lifetime_only(
        self, store: MongoStateStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(locks, "PENDING_TTL", 0.2)
        dead = record("/a")  # announced by a process that died before granting it
        locks._announce(store._locks(), dead)
        assert store.get_lock(dead.token) is None  # an announcement is not a lock
        started = time.monotonic()
        store.create_lock(record("/a"))  # waits until the announcement lapses
        assert 0.1 < time.monotonic() - started < 5

    def test_a_lapsed_announcement_cannot_be_granted(
        self, store: MongoStateStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(locks, "PENDING_TTL", -1.0)  # lapsed as soon as made
        late = record("/a")
        locks._announce(store._locks(), late)
        assert locks._grant(store._locks(), late.token, time.time()) is False
        assert store.get_lock(late.token) is None

    def test_undecided_rivals_refuse_after_the_settle_timeout(
        self, store: MongoStateStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(locks, "SETTLE_TIMEOUT", 0.2)
        rival = record("/a", depth="infinity")
        locks._announce(store._locks(), rival)  # alive, but never decides
        with pytest.raises(LockConflict) as caught:
            store.create_lock(record("/a/b"))
        assert caught.value.conflicting_roots == ["/a"]
        assert store.list_locks("/", include_root=True, include_children=True) == []

    def test_threads_racing_for_overlapping_locks(self, store: StateStore) -> None:
        """Of locks on one path, its parent (depth infinity) and a child, one is granted."""
        roots = [("/r", "infinity"), ("/r/doc", "0"), ("/r/doc", "infinity")] * 4
        granted: list[str] = []
        start = threading.Barrier(len(roots))

        def take(root: str, depth: str) -> None:
            start.wait()
            try:
                store.create_lock(record(root, depth=depth))
                granted.append(root)
            except LockConflict:
                pass

        threads = [threading.Thread(target=take, args=root) for root in roots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(granted) == 1
        assert len(store.list_locks("/", include_root=True, include_children=True)) == 1

    def test_shared_locks_race_without_refusals(self, store: StateStore) -> None:
        start = threading.Barrier(6)

        def take(number: int) -> None:
            start.wait()
            store.create_lock(record("/s", "shared", principal=f"user{number}"))

        threads = [threading.Thread(target=take, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(store.list_locks("/s", include_root=True, include_children=False)) == 6

    # --- lifetime ---------------------------------------------------------------------------

    def test_reopening_keeps_records(self, tmp_path: Path) -> None:
        with self.make_store(tmp_path) as store:
            store.set_property("/a", "{x:}p", b"1")
        with self.make_store(tmp_path) as store:
            assert store.get_property("/a", "{x:}p") == b"1"

    def test_newer_schema_is_refused(self, tmp_path: Path, store: MongoStateStore) -> None:
        store._collection("meta").update_one({"_id": "schema"}, {"$set": {"version": len(SCHEMA) + 1}})
        with pytest.raises(StateStoreError, match="schema version"):
            self.make_store(tmp_path)

    def test_schema_version_is_recorded(self, store: MongoStateStore) -> None:
        assert store._collection("meta").find_one({"_id": "schema"}) == {"_id": "schema", "version": len(SCHEMA)}

    def test_closed_store_refuses_use(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.close()
        with pytest.raises(StateStoreError, match="closed"):
            store.get_lock("x")

    def test_store_opened_before_fork_refuses_use(
        self, store: MongoStateStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store, "_pid", -1)  # as seen from a forked child
        with pytest.raises(StateStoreError, match="fork"):
            store.get_property("/a", "{x:}p")


def test_open_store_by_name() -> None:
    options = {"database": "d", "client_factory": mongomock.MongoClient}
    with open_store("mongo", url="mongodb://u:secret@db.invalid/", **options) as store:
        assert isinstance(store, MongoStateStore)
        assert "secret" not in repr(store) and "u:***@db.invalid" in repr(store)


def test_unusable_urls_are_refused_with_the_reason() -> None:
    with pytest.raises(StateStoreError, match="mongodb://"):
        open_store("mongo", url="http://127.0.0.1/")
    with pytest.raises(StateStoreError, match="cannot be used"):  # nothing listens on port 1
        open_store("mongo", url="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200")
