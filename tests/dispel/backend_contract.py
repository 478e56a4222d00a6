"""The contract every DISPEL cache backend keeps; a backend's tests inherit it with one fixture.

``class TestMyBackend(CacheBackendContract)`` defines a ``backend`` fixture
returning a started backend with no blobs; every test here then runs on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from davgate.dispel.cache import CacheBackend


def stage(backend: CacheBackend, data: bytes) -> str:
    staged = backend.stage()
    Path(staged).write_bytes(data)
    return staged


def read_all(backend: CacheBackend, key: str) -> bytes:
    with backend.open(key) as stream:
        return stream.read()


class CacheBackendContract:
    @pytest.fixture
    def backend(self) -> CacheBackend:
        raise NotImplementedError("a backend's test class defines this fixture")

    def test_a_committed_blob_is_read_back_whole_and_by_range(self, backend: CacheBackend) -> None:
        data = np.random.default_rng(7).bytes(3 * 1024 * 1024 + 17)
        staged = stage(backend, data)
        info = backend.commit("ab12", staged)
        assert info.size == len(data) and not os.path.exists(staged)
        assert backend.stat("ab12") == info
        assert read_all(backend, "ab12") == data
        with backend.open("ab12") as stream:
            stream.seek(2_000_000)
            assert stream.read(1000) == data[2_000_000:2_001_000]
            stream.seek(10)
            assert stream.read(5) == data[10:15]
            stream.seek(len(data) - 3)
            assert stream.read(100) == data[-3:]

    def test_nothing_is_visible_before_commit(self, backend: CacheBackend) -> None:
        staged = stage(backend, b"in the making")
        assert backend.stat("cd34") is None
        with pytest.raises(FileNotFoundError):
            backend.open("cd34")
        backend.discard(staged)
        assert not os.path.exists(staged)
        backend.discard(staged)  # twice is fine

    def test_a_new_commit_replaces_the_blob_and_its_version(self, backend: CacheBackend) -> None:
        first = backend.commit("ef56", stage(backend, b"version one"))
        second = backend.commit("ef56", stage(backend, b"version two"))
        assert first.size == second.size and first.version != second.version
        assert read_all(backend, "ef56") == b"version two"

    def test_an_open_blob_survives_its_deletion_or_is_read_whole(self, backend: CacheBackend) -> None:
        backend.commit("0a0a", stage(backend, b"x" * 1000))
        with backend.open("0a0a") as stream:
            backend.delete("0a0a")
            assert stream.read() == b"x" * 1000
        assert backend.stat("0a0a") is None

    def test_delete_of_a_missing_blob_is_fine(self, backend: CacheBackend) -> None:
        backend.delete("9999")
        assert backend.stat("9999") is None

    def test_suffixed_keys(self, backend: CacheBackend) -> None:
        backend.commit("abcd.gz", stage(backend, b"gz"))
        assert read_all(backend, "abcd.gz") == b"gz" and backend.stat("abcd") is None

    @pytest.mark.parametrize("key", ["", "../x", ".staging", "a/b"])
    def test_bad_keys_are_refused(self, backend: CacheBackend, key: str) -> None:
        with pytest.raises(ValueError, match="bad cache key"):
            backend.stat(key)

    def test_start_removes_staging_files_of_dead_processes(self, backend: CacheBackend) -> None:
        mine = Path(stage(backend, b"in progress"))
        dead = mine.parent / "999999999-abc"
        dead.write_bytes(b"litter")
        backend.start()
        assert not dead.exists() and mine.exists()
        backend.discard(str(mine))
