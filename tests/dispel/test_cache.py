"""The result cache: index in the state store, blobs in a backend, LRU eviction, corruption, counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from davgate.config.schema import S3Cache
from davgate.dispel.cache import (
    CacheBackend,
    DispelCache,
    LocalBackend,
    file_digest,
)
from davgate.dispel.cache_s3 import S3Backend
from davgate.dispel.counting import counters, executions_total
from davgate.state import CacheEntry
from davgate.state.sqlite import SqliteStateStore
from tests.dispel.backend_contract import CacheBackendContract


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


def make_cache(tmp_path: Path, store: SqliteStateStore, max_bytes: int = 1000) -> DispelCache:
    return DispelCache(LocalBackend(tmp_path / "cache"), store, max_bytes, hit_interval=0)


def put(cache: DispelCache, key: str, data: bytes, template: str = "t", definition: str = "d1"):
    staged = cache.backend.stage()
    Path(staged).write_bytes(data)
    with open(staged, "rb") as stream:
        digest = file_digest(stream)
    now = time.time()
    blob = cache.put(CacheEntry(key, template, definition, f"{key}.tif", len(data), digest, now, 0, now), staged)
    blob.close()


def read(cache: DispelCache, key: str) -> bytes | None:
    blob = cache.open(key)
    if blob is None:
        return None
    cache.record_hit(key)  # as the engine does
    with blob.file:
        return blob.file.read()


def test_put_then_open(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = make_cache(tmp_path, store)
    assert read(cache, "aa01") is None
    put(cache, "aa01", b"result")
    assert read(cache, "aa01") == b"result"
    entry = store.cache_get("aa01")
    assert (entry.template, entry.params, entry.size, entry.hits) == ("t", "aa01.tif", 6, 1)
    assert not list((tmp_path / "cache" / ".staging").iterdir())


def test_least_recently_used_entries_are_evicted_first(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = make_cache(tmp_path, store, max_bytes=300)
    for key in ("k1", "k2", "k3"):
        put(cache, key, b"x" * 100)
        time.sleep(0.01)
    assert read(cache, "k1") == b"x" * 100  # k1 is now the most recently used
    put(cache, "k4", b"y" * 100)  # 400 bytes: one entry must go, and it is k2
    assert [read(cache, k) is not None for k in ("k1", "k2", "k3", "k4")] == [True, False, True, True]
    assert store.counter("dispel_cache_bytes") == 300


def test_a_result_larger_than_the_cache_is_still_served_once(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = make_cache(tmp_path, store, max_bytes=10)
    staged = cache.backend.stage()
    Path(staged).write_bytes(b"z" * 50)
    blob = cache.put(CacheEntry("big", "t", "d", "p", 50, "crc32:0", 1.0, 0, 1.0), staged)
    with blob.file:
        assert blob.file.read() == b"z" * 50
    assert read(cache, "big") is None and store.counter("dispel_cache_bytes") == 0


def test_a_corrupted_blob_is_dropped(tmp_path: Path, store: SqliteStateStore) -> None:
    put(make_cache(tmp_path, store), "c0ffee", b"good bytes")
    (tmp_path / "cache" / "c0" / "c0ffee").write_bytes(b"evil bytes")  # same size, other content
    cache = make_cache(tmp_path, store)  # a process that has not checked this blob yet
    assert read(cache, "c0ffee") is None
    assert store.cache_get("c0ffee") is None
    assert not (tmp_path / "cache" / "c0" / "c0ffee").exists()


def test_a_truncated_blob_is_dropped_even_after_a_check(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = make_cache(tmp_path, store)
    put(cache, "abcd", b"0123456789")
    assert read(cache, "abcd") is not None
    (tmp_path / "cache" / "ab" / "abcd").write_bytes(b"01234")  # a new version of the file
    assert read(cache, "abcd") is None


def test_a_blob_without_index_entry_is_a_miss(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = make_cache(tmp_path, store)
    (tmp_path / "cache" / "ee").mkdir(parents=True)
    (tmp_path / "cache" / "ee" / "eeee").write_bytes(b"orphan")
    assert read(cache, "eeee") is None


def test_older_definitions_of_a_template_are_dropped(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = make_cache(tmp_path, store)
    put(cache, "old1", b"1", definition="v1")
    put(cache, "new1", b"2", definition="v2")
    put(cache, "other", b"3", template="u", definition="v1")
    assert cache.drop_template("t", keep_definition="v2") == 1
    assert [read(cache, k) is not None for k in ("old1", "new1", "other")] == [False, True, True]


def test_hits_and_misses_are_written_in_batches(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = DispelCache(LocalBackend(tmp_path / "cache"), store, 1000, hit_interval=3600)
    put(cache, "h1", b"x")
    for _ in range(3):
        cache.record_hit("h1", "t")
    cache.record_hit("h1")  # a use of the entry that is no request's hit (e.g. a gzip variant)
    cache.record_miss("t")
    assert store.cache_get("h1").hits == 0 and counters(store) == {}
    assert cache.entry("h1").hits == 4  # what PROPFIND shows: written and pending
    cache.close()
    assert store.cache_get("h1").hits == 4
    assert counters(store) == {"t": {"executions": 0, "cache_hits": 3, "cache_misses": 1}}


def test_a_batch_is_written_without_further_requests(tmp_path: Path, store: SqliteStateStore) -> None:
    cache = DispelCache(LocalBackend(tmp_path / "cache"), store, 1000, hit_interval=0.05)
    cache.record_miss("t")
    deadline = time.monotonic() + 5
    while not counters(store) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counters(store)["t"]["cache_misses"] == 1
    cache.close()


def test_counters_by_template(store: SqliteStateStore) -> None:
    store.add_counter("dispel:tiffstore:executions", 2)
    store.add_counter("dispel:tiffstore:cache_hits", 5)
    store.add_counter("dispel:other.v2:executions")
    store.add_counter("dispel:other.v2:unknown_kind", 9)
    store.add_counter("dispel_cache_bytes", 100)  # not a per-template count
    assert counters(store) == {
        "tiffstore": {"executions": 2, "cache_hits": 5, "cache_misses": 0},
        "other.v2": {"executions": 1, "cache_hits": 0, "cache_misses": 0},
    }
    assert executions_total(store) == 3


class TestLocalBackend(CacheBackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> CacheBackend:
        backend = LocalBackend(tmp_path / "cache")
        backend.start()
        return backend


def test_an_unreachable_backend_serves_uncached(tmp_path: Path, store: SqliteStateStore, silent_port: int) -> None:
    """The real S3 backend, its endpoint a port that takes connections and never answers (a frozen gateway)."""
    options = S3Cache(
        type="s3", endpoint=f"http://127.0.0.1:{silent_port}", bucket="results", access_key="k", secret_key="s",
        staging=tmp_path / "staging", timeout=0.5, retries=0,
    )  # fmt: skip
    cache = DispelCache(S3Backend(options), store, 1000, hit_interval=0)
    assert cache.open("k1") is None  # a miss, not an error
    staged = cache.backend.stage()
    Path(staged).write_bytes(b"made anyway")
    blob = cache.put(CacheEntry("k1", "t", "d", "p", 11, "crc32:0", 1.0, 0, 1.0), staged)
    with blob.file:
        assert blob.file.read() == b"made anyway"
    assert store.cache_get("k1") is None and store.counter("dispel_cache_bytes") == 0
    assert not Path(staged).exists()


class TestStateStore:
    def test_leases(self, store: SqliteStateStore) -> None:
        far = time.time() + 60
        assert store.acquire_lease("k", "a", far).holder == "a"
        assert store.acquire_lease("k", "b", far).holder == "a"  # a live lease of someone else
        assert store.acquire_lease("k", "a", far).holder == "a"  # one's own lease again
        store.release_lease("k", "a", status=504, reason="too slow", keep=60)
        lease = store.acquire_lease("k", "b", far)
        assert (lease.holder, lease.status, lease.reason) == ("a", 504, "too slow")
        store.release_lease("k", "a")
        assert store.acquire_lease("k", "b", far).holder == "b"

    def test_an_expired_lease_is_taken_over(self, store: SqliteStateStore) -> None:
        store.acquire_lease("k", "dead", time.time() - 1)
        assert store.acquire_lease("k", "b", time.time() + 60).holder == "b"

    def test_counters(self, store: SqliteStateStore) -> None:
        assert store.counter("dispel_executions") == 0
        store.add_counter("dispel_executions")
        store.add_counter("dispel_executions", 2)
        assert store.counter("dispel_executions") == 3

    def test_counters_by_prefix(self, store: SqliteStateStore) -> None:
        for name in ("dispel:a:x", "dispel:b:y", "dispel_z", "other"):
            store.add_counter(name, len(name))
        assert store.counters("dispel:") == {"dispel:a:x": 10, "dispel:b:y": 10}
        assert store.counters("%") == {} and store.counters("nothing") == {}

    def test_cache_total_follows_replacements_and_removals(self, store: SqliteStateStore) -> None:
        store.cache_put(CacheEntry("a", "t", "d", "p", 10, "c", 1.0, 0, 1.0))
        store.cache_put(CacheEntry("a", "t", "d", "p", 25, "c", 1.0, 0, 1.0))
        store.cache_put(CacheEntry("b", "t", "d", "p", 5, "c", 1.0, 0, 1.0))
        assert store.counter("dispel_cache_bytes") == 30
        store.cache_remove(["a", "missing"])
        assert store.counter("dispel_cache_bytes") == 5
        store.cache_touch({"b": (4, 99.0)})
        assert (store.cache_get("b").hits, store.cache_get("b").last_use) == (4, 99.0)
