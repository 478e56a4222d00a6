"""What the state stores' contract suites share: a store made from a spec, and threads raced at once.

A suite is a class of tests; each backend's test class subclasses it and
gives one ``store_spec(tmp_path)``: the ``open_store`` kind and options.
"Another process" is a second store opened on the same spec.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from davgate.state import StateStore, open_store

Spec = tuple[str, dict[str, Any]]


class StoreSuite:
    """The base of every contract suite. Subclasses define :meth:`store_spec`."""

    def store_spec(self, tmp_path: Path) -> Spec:
        raise NotImplementedError

    def make_store(self, tmp_path: Path) -> StateStore:
        kind, options = self.store_spec(tmp_path)
        return open_store(kind, **options)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[StateStore]:
        with self.make_store(tmp_path) as store:
            yield store


def race(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(0..count-1)`` in threads released together; their results in order."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(number: int) -> None:
        start.wait()
        results[number] = action(number)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
