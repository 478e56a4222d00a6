"""What the state stores' contract suites share: a store made from a spec.

A suite is a class of tests; each backend's test class subclasses it and
gives one ``store_spec(tmp_path)``: the ``open_store`` kind and options.
"Another process" is a second store opened on the same spec.
"""

from __future__ import annotations

from collections.abc import Iterator
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
