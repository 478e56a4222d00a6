"""Host keys, the DISPEL cache index, leases, counters and digests: the same tests on both backends.

The StateStoreContract covers locks and properties; these records were
tested on SQLite only (tests/dispel, tests/providers). Running one suite on
SQLite and on MongoDB shows that the Mongo store means the same by each call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from davgate.state import CacheEntry, StateStore
from tests.helpers import race
from tests.state.suite import Spec, StoreSuite
from tests.state.test_mongo_store import MongoServer


def entry(key: str, size: int, last_use: float, *, template: str = "t", definition: str = "d") -> CacheEntry:
    return CacheEntry(key, template, definition, "p", size, "c", 1.0, 0, last_use)


class RecordsContract(StoreSuite):
    def in_own_stores(self, tmp_path: Path, count: int, action: Callable[[StateStore, int], Any]) -> list[Any]:
        """Race ``action`` in threads, each with a store of its own (as processes have)."""
        stores = [self.make_store(tmp_path) for _ in range(count)]
        try:
            return race(count, lambda n: action(stores[n], n))
        finally:
            for store in stores:
                store.close()

    # --- SSH host keys --------------------------------------------------------------

    def test_first_pin_wins_and_can_be_forgotten(self, store: StateStore) -> None:
        assert store.get_host_key("h", 22) is None
        assert store.pin_host_key("h", 22, "ssh-ed25519", "AAAA1") is True
        assert store.pin_host_key("h", 22, "ssh-ed25519", "AAAA2") is False
        assert store.pin_host_key("h", 2222, "ssh-rsa", "BBBB") is True
        pinned = store.get_host_key("h", 22)
        assert pinned is not None and (pinned.host, pinned.port) == ("h", 22)
        assert (pinned.key_type, pinned.key_b64) == ("ssh-ed25519", "AAAA1")
        assert abs(pinned.pinned - time.time()) < 60
        assert store.forget_host_key("h", 22) is True and store.forget_host_key("h", 22) is False
        assert store.get_host_key("h", 22) is None and store.get_host_key("h", 2222) is not None

    def test_racing_pins_agree_on_one_key(self, tmp_path: Path, store: StateStore) -> None:
        won = self.in_own_stores(tmp_path, 8, lambda own, n: own.pin_host_key("h", 22, "ssh-ed25519", f"K{n}"))
        assert won.count(True) == 1
        assert store.get_host_key("h", 22).key_b64 == f"K{won.index(True)}"  # type: ignore[union-attr]

    # --- DISPEL leases and counters ----------------------------------------------------

    def test_leases(self, store: StateStore) -> None:
        far = time.time() + 60
        assert store.acquire_lease("k", "a", far).holder == "a"
        assert store.acquire_lease("k", "b", far).holder == "a"  # a live lease of someone else
        assert store.acquire_lease("k", "a", far + 1).expires == far + 1  # one's own lease again
        store.release_lease("k", "b")  # not b's: nothing happens
        assert store.acquire_lease("k", "b", far).holder == "a"
        store.release_lease("k", "a", status=504, reason="too slow", keep=60)
        lease = store.acquire_lease("k", "b", far)
        assert (lease.holder, lease.status, lease.reason) == ("a", 504, "too slow")
        store.release_lease("k", "a")
        lease = store.acquire_lease("k", "b", far)
        assert (lease.holder, lease.status, lease.reason) == ("b", None, "")

    def test_an_expired_lease_is_taken_over(self, store: StateStore) -> None:
        store.acquire_lease("k", "dead", time.time() - 1)
        assert store.acquire_lease("k", "b", time.time() + 60).holder == "b"

    def test_a_failure_kept_for_no_time_ends_the_lease(self, store: StateStore) -> None:
        store.acquire_lease("k", "a", time.time() + 60)
        store.release_lease("k", "a", status=500, reason="boom", keep=0)
        assert store.acquire_lease("k", "b", time.time() + 60).holder == "b"

    def test_racing_leases_have_one_holder(self, tmp_path: Path) -> None:
        far = time.time() + 60
        leases = self.in_own_stores(tmp_path, 8, lambda own, n: own.acquire_lease("k", f"h{n}", far))
        assert len({lease.holder for lease in leases}) == 1

    def test_counters(self, tmp_path: Path, store: StateStore) -> None:
        assert store.counter("dispel_executions") == 0
        store.add_counter("dispel_executions")
        store.add_counter("dispel_executions", 2)
        self.in_own_stores(tmp_path, 4, lambda own, n: [own.add_counter("dispel_runs.t") for _ in range(5)])
        store.add_counter("other", -3)
        assert store.counter("dispel_executions") == 3 and store.counter("other") == -3
        assert store.counters("dispel_") == {"dispel_executions": 3, "dispel_runs.t": 20}
        assert store.counters("dispel_runs.") == {"dispel_runs.t": 20}
        assert store.counters("dispel_[") == {}

    # --- the DISPEL cache index --------------------------------------------------------------

    def test_cache_total_follows_replacements_and_removals(self, store: StateStore) -> None:
        store.cache_put(entry("a", 10, 1.0))
        store.cache_put(entry("a", 25, 1.0))
        store.cache_put(entry("b", 5, 1.0))
        assert store.counter("dispel_cache_bytes") == 30
        assert store.cache_get("a") == entry("a", 25, 1.0) and store.cache_get("missing") is None
        store.cache_remove(["a", "missing"])
        assert store.counter("dispel_cache_bytes") == 5
        store.cache_touch({"b": (4, 99.0), "missing": (1, 1.0)})
        store.cache_touch({"b": (1, 50.0)})  # last use never goes back
        assert (store.cache_get("b").hits, store.cache_get("b").last_use) == (5, 99.0)  # type: ignore[union-attr]
        assert store.cache_get("missing") is None

    def test_eviction_removes_least_recently_used(self, store: StateStore) -> None:
        for key, last_use in (("new", 30.0), ("old", 10.0), ("mid", 20.0)):
            store.cache_put(entry(key, 10, last_use))
        assert store.cache_evict(30) == []
        assert [e.key for e in store.cache_entries()] == ["old", "mid", "new"]
        assert [e.key for e in store.cache_evict(15)] == ["old", "mid"]
        assert [e.key for e in store.cache_entries()] == ["new"]
        assert store.counter("dispel_cache_bytes") == 10

    def test_racing_evictions_never_return_one_entry_twice(self, tmp_path: Path, store: StateStore) -> None:
        for number in range(40):
            store.cache_put(entry(f"e{number:02}", 10, float(number)))
        evicted = self.in_own_stores(tmp_path, 4, lambda own, n: own.cache_evict(200))
        keys = [e.key for removed in evicted for e in removed]
        assert len(keys) == len(set(keys)) >= 20
        assert sorted(keys) == [f"e{n:02}" for n in range(len(keys))]  # the least recently used
        assert store.counter("dispel_cache_bytes") == 10 * len(store.cache_entries()) <= 200

    def test_drop_removes_other_definitions(self, store: StateStore) -> None:
        store.cache_put(entry("old", 10, 1.0, definition="v1"))
        store.cache_put(entry("new", 20, 2.0, definition="v2"))
        store.cache_put(entry("else", 40, 3.0, template="u", definition="v1"))
        assert [e.key for e in store.cache_drop("t", "v2")] == ["old"]
        assert sorted(e.key for e in store.cache_entries()) == ["else", "new"]
        assert store.counter("dispel_cache_bytes") == 60

    # --- content digests -----------------------------------------------------------------------

    def test_digests_follow_the_version(self, store: StateStore) -> None:
        assert store.get_digests("/a", "e1") == {}
        store.put_digests("/a", "e1", {"sha-256": "X", "md5": "Y"})
        store.put_digests("/a", "e1", {"md5": "Z", "a.b$c%2E": "odd"})  # added to, replaced
        assert store.get_digests("/a", "e1") == {"sha-256": "X", "md5": "Z", "a.b$c%2E": "odd"}
        store.put_digests("/a", "e2", {"md5": "N"})  # a new version: the old one's are dropped
        assert store.get_digests("/a", "e1") == {} and store.get_digests("/a", "e2") == {"md5": "N"}
        store.put_digests("/a", "e3", {})
        assert store.get_digests("/a", "e2") == {} and store.get_digests("/b", "e2") == {}

    def test_racing_digests_of_one_version_all_stay(self, tmp_path: Path, store: StateStore) -> None:
        self.in_own_stores(tmp_path, 6, lambda own, n: own.put_digests("/a", "e", {f"alg{n}": str(n)}))
        assert store.get_digests("/a", "e") == {f"alg{n}": str(n) for n in range(6)}


class TestSqliteRecords(RecordsContract):
    def store_spec(self, tmp_path: Path) -> Spec:
        return "sqlite", {"path": str(tmp_path / "state.sqlite")}


class TestMongoRecords(MongoServer, RecordsContract):
    pass
