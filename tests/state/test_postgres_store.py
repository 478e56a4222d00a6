"""The PostgreSQL state store: the state-store contract against a real server, and what is its own.

The session's server (:mod:`tests.postgres`) gives each test a database of
its own. The contract's "other process" peers are real processes on it, as
for SQLite. Besides the contract: the schema is made and upgraded by
davgate; the request path's queries use an index; a server that goes away
makes calls fail within the timeout (503) and the same store serves again
once it is back.

Other modules mix :class:`PostgresServer` into their contract classes the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml

from davgate.app import open_state
from davgate.config import ConfigError, load_config
from davgate.state import StateStore, StateStoreError, StoreUnavailable, open_store
from davgate.state.postgres import SCHEMA, PostgresStateStore
from davgate.state.postgres.schema import migrate
from tests.helpers import USERS, Server, ServerLauncher, race, wait_until, write_htpasswd
from tests.postgres import Postgres
from tests.state.suite import Spec
from tests.state.test_sqlite_store import StateStoreContract, record

POOL = 4  # connections per store: a contract test opens several stores at once
OUTAGE_TIMEOUT = 1.0  # state.timeout while the server is stopped
AUTH = ("alice", USERS["alice"])
EXPLAIN_ALL = {  # every statement's plan into the server's log; table scans priced out
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_format": "json",
    "enable_seqscan": "off",
}
ADMIN_TOKEN = "an-admin-token-of-32-characters!"
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
)
PATCH = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:c>red</Z:c></D:prop></D:set></D:propertyupdate>'
)
PROPFIND = '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:c/></D:prop></D:propfind>'


class PostgresServer:
    """Mix into a contract class: each of its tests runs on a fresh database of the session's server."""

    postgres: Postgres
    database: str

    @pytest.fixture(autouse=True)
    def postgres_database(self, postgres: Postgres) -> Iterator[str]:
        self.postgres = postgres
        self.database = postgres.new_database()
        yield self.database
        postgres.drop_database(self.database)

    def url(self) -> str:
        return self.postgres.url(self.database)

    def store_spec(self, tmp_path: Path) -> Spec:
        return "postgres", {"url": self.url(), "pool": POOL}


class TestPostgresStateStore(PostgresServer, StateStoreContract):
    # --- the schema: made, recorded, upgraded, refused when newer -----------------------------

    def test_schema_version_is_recorded(self, store: PostgresStateStore) -> None:
        with psycopg.connect(self.url()) as db:
            assert db.execute("SELECT version FROM davgate_schema").fetchall() == [(len(SCHEMA),)]

    def test_upgrade_from_version_1_keeps_records(self, tmp_path: Path) -> None:
        """A database made by a davgate of schema version 1 (before the management API) is upgraded in place."""
        with psycopg.connect(self.url(), autocommit=True) as db:
            assert migrate(db, "old", SCHEMA[:1]) == 0
            db.execute("INSERT INTO properties (url, name, value, is_text) VALUES ('/a', '{x:}p', 'blue', true)")
            assert db.execute("SELECT to_regclass('api_jobs')").fetchone() == (None,)
        with self.make_store(tmp_path) as store:
            assert store.get_property("/a", "{x:}p") == "blue"
            assert store.api_user_put("a@x", "A") is True
        with psycopg.connect(self.url(), autocommit=True) as db:
            assert db.execute("SELECT version FROM davgate_schema").fetchall() == [(len(SCHEMA),)]
            assert migrate(db, "again", SCHEMA) == len(SCHEMA)  # nothing left to do

    def test_replicas_starting_together_migrate_once(self, tmp_path: Path) -> None:
        stores = race(4, lambda _: self.make_store(tmp_path))
        try:
            stores[0].set_property("/a", "{x:}p", b"1")
            assert [store.get_property("/a", "{x:}p") for store in stores] == [b"1"] * 4
        finally:
            for store in stores:
                store.close()

    def test_newer_schema_is_refused(self, tmp_path: Path, store: PostgresStateStore) -> None:
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute("UPDATE davgate_schema SET version = %s", (len(SCHEMA) + 1,))
        with pytest.raises(StateStoreError, match="schema version"):
            self.make_store(tmp_path)

    # --- the request path: indexed ---------------------------------------------------------------

    @pytest.mark.parametrize(
        ("call", "index"),
        [
            (lambda s: s.get_lock("opaquelocktoken:x"), "locks_pkey"),
            (lambda s: s.list_locks("/a/b", include_root=True, include_children=True), "locks_root"),
            (lambda s: s.any_live_lock(), "locks_expire"),
            (lambda s: s.get_property("/a/b", "{x:}p"), "properties_pkey"),
            (lambda s: s.property_names("/a/b"), "properties_pkey"),
            (lambda s: s.properties_of(["/a/b", "/a/c"]), "properties_pkey"),
            (lambda s: s.cache_get("k"), "dispel_cache_pkey"),
            (lambda s: s.acquire_lease("k", "me", time.time() + 60), "dispel_leases_pkey"),
            (lambda s: s.get_digests("/a/b", "etag"), "digests_pkey"),
            (lambda s: s.infra_generation(), "counters_pkey"),
            (lambda s: s.job_claim("me", time.time(), time.time() + 30), "api_jobs_queue"),
        ],
        ids=lambda value: value if isinstance(value, str) else "",
    )
    def test_request_path_queries_use_an_index(
        self, store: PostgresStateStore, tmp_path: Path, call: Callable[[StateStore], object], index: str
    ) -> None:
        """A call the request path makes, as the server planned its statements: through ``index``, no table scan.

        The server explains each statement of this database into its log
        (auto_explain). Sequential scans are priced out (``enable_seqscan``
        off), so a plan still holds one only where no index can serve; an
        index walked from end to end is a table scan too, unless the index
        is partial (it holds only the rows the query wants, e.g. the live queue).
        """
        self.postgres.set_database(self.database, EXPLAIN_ALL)
        with self.make_store(tmp_path) as explained:  # new sessions, with the settings
            start = self.postgres.log.stat().st_size  # after opening: the migration is not the request path
            call(explained)
        plans = logged_plans(self.postgres.log, start)
        with psycopg.connect(self.url()) as db:
            partial = {
                name for (name,) in db.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%% WHERE %%'")
            }
        assert plans
        assert index in {name for _, plan in plans for name in indexes_used(plan)}, plans
        scans = {query: whole for query, plan in plans if (whole := whole_table_scans(plan, partial))}
        assert not scans, f"table scans on the request path: {scans}"

    # --- the server going away, and coming back ------------------------------------------------

    def test_server_gone_is_unavailable_within_the_timeout_then_served_again(self, tmp_path: Path) -> None:
        with open_store("postgres", url=self.url(), pool=2, timeout=OUTAGE_TIMEOUT) as store:
            store.set_property("/a", "{x:}p", b"1")
            self.postgres.stop()
            try:
                for call in (lambda: store.get_property("/a", "{x:}p"), lambda: store.create_lock(record("/a"))):
                    started = time.monotonic()
                    with pytest.raises(StoreUnavailable):
                        call()
                    assert time.monotonic() - started < OUTAGE_TIMEOUT + 2  # the timeout, and no hang
            finally:
                self.postgres.start()
            wait_until(lambda: served(store), timeout=30, message="the store did not serve again")
            assert store.get_property("/a", "{x:}p") == b"1"

    def test_idle_connections_to_a_restarted_server_are_not_lent(self, tmp_path: Path) -> None:
        """The server restarted while the pool was idle: the first call after is served, on a new connection."""
        with self.make_store(tmp_path) as store:
            store.set_property("/a", "{x:}p", b"1")  # the pool holds an idle connection now
            self.postgres.stop()
            self.postgres.start()
            assert store.get_property("/a", "{x:}p") == b"1"

    def test_unavailable_is_a_503_and_davgate_recovers_without_restart(
        self, tmp_path: Path, serve: ServerLauncher
    ) -> None:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "f.txt").write_text("x")
        state = {"type": "postgres", "url": self.url(), "pool": 2, "timeout": OUTAGE_TIMEOUT}
        config = {
            "auth": {"htpasswd": write_htpasswd(tmp_path / "htpasswd")},
            "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
            "state": state,
            "api": {"admin_token": ADMIN_TOKEN, "folder": tmp_path / "api"},
        }
        server = serve(config)
        assert dav(server, "PROPPATCH", "/data/f.txt", PATCH).status_code == 207
        self.postgres.stop()
        try:
            started = time.monotonic()
            answer = dav(server, "LOCK", "/data/f.txt", LOCKINFO)
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
            assert self.postgres.address not in answer.text and str(self.postgres.port) not in answer.text
            assert time.monotonic() - started < OUTAGE_TIMEOUT + 5
            assert requests.get(server.url + "/readyz", timeout=60).status_code == 503
            api = requests.get(
                server.url + "/api/v1/infrastructure", headers={"X-Access-Token": ADMIN_TOKEN}, timeout=60
            )
            assert api.status_code == 503 and api.headers["Retry-After"] == "1"
            assert api.json()["error"] == "unavailable"
        finally:
            self.postgres.start()
        wait_until(lambda: dav(server, "LOCK", "/data/f.txt", LOCKINFO).status_code == 200, timeout=30)
        assert dav(server, "LOCK", "/data/f.txt", LOCKINFO).status_code == 423  # the lock is in the database
        found = dav(server, "PROPFIND", "/data/f.txt", PROPFIND, Depth="0")
        assert found.status_code == 207 and "red" in found.text

    # --- lifetime ---------------------------------------------------------------------------------

    def test_reopening_keeps_records(self, tmp_path: Path) -> None:
        with self.make_store(tmp_path) as store:
            store.set_property("/a", "{x:}p", b"1")
        with self.make_store(tmp_path) as store:
            assert store.get_property("/a", "{x:}p") == b"1"

    def test_closed_store_refuses_use(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.close()
        with pytest.raises(StateStoreError, match="closed"):
            store.get_lock("x")

    def test_store_opened_before_fork_refuses_use(
        self, store: PostgresStateStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store, "_pid", -1)  # as seen from a forked child
        with pytest.raises(StateStoreError, match="fork"):
            store.get_property("/a", "{x:}p")

    def test_the_config_entry_opens_this_store(self, tmp_path: Path) -> None:
        path = tmp_path / "davgate.yaml"
        state = {"type": "postgres", "url": self.url(), "pool": 3}
        path.write_text(yaml.safe_dump({"mounts": {}, "state": state}))
        config = load_config(path, {})
        assert self.postgres.password not in repr(config)
        with open_state(config) as store:
            assert isinstance(store, PostgresStateStore)
            assert self.postgres.password not in repr(store) and "davgate:***@" in repr(store)


def test_config_refuses_what_is_not_a_postgres_url_or_a_pool(tmp_path: Path) -> None:
    for state, key in (
        ({"url": "mysql://h/d"}, "state.url"),
        ({"url": "postgresql://h/d", "pool": 0}, "state.pool"),
        ({"url": "postgresql://h/d", "timeout": 0}, "state.timeout"),
    ):
        path = tmp_path / "davgate.yaml"
        path.write_text(yaml.safe_dump({"mounts": {}, "state": {"type": "postgres", **state}}))
        with pytest.raises(ConfigError, match=key):
            load_config(path, {})


def test_unusable_urls_are_refused_with_the_reason_and_no_password() -> None:
    with pytest.raises(StateStoreError, match="expected a postgresql:// URL"):
        open_store("postgres", url="host=127.0.0.1 password=secret")
    with pytest.raises(StateStoreError, match="not a valid PostgreSQL URL") as caught:
        open_store("postgres", url="postgresql://u:secret@127.0.0.1/d?nosuchoption=1")
    assert "secret" not in str(caught.value)
    with pytest.raises(StateStoreError, match="cannot be used") as caught:  # nothing listens on port 1
        open_store("postgres", url="postgresql://u:secret@127.0.0.1:1/d", timeout=1)
    assert "secret" not in str(caught.value)


def served(store: StateStore) -> bool:
    try:
        store.get_property("/a", "{x:}p")
    except StoreUnavailable:
        return False
    return True


def logged_plans(log: Path, start: int) -> list[tuple[str, dict[str, Any]]]:
    """``(query, plan)`` of every plan auto_explain wrote to the server's log after byte ``start``."""
    with log.open("rb") as file:
        file.seek(start)
        text = file.read().decode()
    decoder = json.JSONDecoder()
    plans = []
    for chunk in text.split("plan:")[1:]:
        explained, _ = decoder.raw_decode(chunk.lstrip())
        plans.append((explained["Query Text"], explained["Plan"]))
    return plans


def whole_table_scans(plan: dict[str, Any], partial: set[str]) -> list[str]:
    """The nodes of ``plan`` that read a whole table (or a whole index of it), by relation or index name."""
    found = []
    if plan["Node Type"] == "Seq Scan":
        found.append(plan["Relation Name"])
    elif "Index Name" in plan and "Index Cond" not in plan and plan["Index Name"] not in partial:
        found.append(plan["Index Name"])
    for child in plan.get("Plans", []):
        found += whole_table_scans(child, partial)
    return found


def indexes_used(plan: dict[str, Any]) -> Iterator[str]:
    """The indexes a plan reads, or checks an upsert's conflict against."""
    if "Index Name" in plan:
        yield plan["Index Name"]
    yield from plan.get("Conflict Arbiter Indexes", [])
    for child in plan.get("Plans", []):
        yield from indexes_used(child)


def dav(server: Server, method: str, path: str, body: str = "", **headers: str) -> requests.Response:
    return requests.request(method, server.url + path, data=body, headers=headers, auth=AUTH, timeout=60)
