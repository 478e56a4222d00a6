"""Single-flight: identical concurrent requests run once, across threads and (simulated) processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from davgate.dispel.errors import ExecutionFailed, OutOfBounds
from davgate.dispel.flight import SingleFlight
from davgate.state.sqlite import SqliteStateStore
from tests.helpers import race


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


class Result:
    """A produced value that appears only once production has finished."""

    def __init__(self, delay: float = 0.3, error: Exception | None = None) -> None:
        self.value: str | None = None
        self.runs = 0
        self.delay = delay
        self.error = error
        self.lock = threading.Lock()

    def ready(self) -> str | None:
        return self.value

    def produce(self) -> str:
        with self.lock:
            self.runs += 1
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        self.value = "made"
        return self.value


def hammer(flights: list[SingleFlight], result: Result, count: int = 16) -> list[object]:
    """``count`` threads asking at once, spread over the given SingleFlight instances."""

    def ask(i: int) -> object:
        try:
            return flights[i % len(flights)].run("key", ready=result.ready, produce=result.produce, wait=30, lease=30)
        except Exception as error:  # noqa: BLE001 - the test looks at it
            return error

    return race(count, ask)


def test_sixteen_threads_one_run(store: SqliteStateStore) -> None:
    result = Result()
    assert hammer([SingleFlight(store)], result) == ["made"] * 16
    assert result.runs == 1


def test_two_processes_on_one_store_one_run(tmp_path: Path) -> None:
    """Two SingleFlights with their own store connections stand for two server processes."""
    with SqliteStateStore(tmp_path / "shared.db") as first, SqliteStateStore(tmp_path / "shared.db") as second:
        result = Result()
        answers = hammer([SingleFlight(first, "process-1"), SingleFlight(second, "process-2")], result)
    assert answers == ["made"] * 16
    assert result.runs == 1


def test_everyone_waiting_gets_the_failure(tmp_path: Path) -> None:
    with SqliteStateStore(tmp_path / "shared.db") as first, SqliteStateStore(tmp_path / "shared.db") as second:
        result = Result(error=OutOfBounds("window beyond the image"))
        answers = hammer([SingleFlight(first, "process-1"), SingleFlight(second, "process-2")], result)
    assert result.runs == 1
    assert all(isinstance(a, OutOfBounds) and a.reason == "window beyond the image" for a in answers)


def test_a_failure_is_not_remembered_for_long(store: SqliteStateStore) -> None:
    flight = SingleFlight(store)
    result = Result(delay=0, error=ExecutionFailed("flaky"))
    with pytest.raises(ExecutionFailed):
        flight.run("key", ready=result.ready, produce=result.produce, wait=5, lease=5)
    result.error = None
    assert flight.run("key", ready=result.ready, produce=result.produce, wait=5, lease=5) == "made"
    assert result.runs == 2


def test_a_dead_holders_lease_expires(store: SqliteStateStore) -> None:
    store.acquire_lease("key", "a-process-that-died", time.time() + 0.3)
    result = Result(delay=0)
    assert SingleFlight(store).run("key", ready=result.ready, produce=result.produce, wait=10, lease=10) == "made"
    assert result.runs == 1
