"""cheroot's request threads: a few to begin with, one more each time a connection waits, up to the limit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from davgate.thread_pool import FIRST_THREADS, GrowingPool, growing_pool
from tests.helpers import wait_until


class FakeServer:
    """What cheroot's worker threads ask of their server."""

    def __init__(self) -> None:
        self.ready = True
        self.stats = {"Enabled": False, "Worker Threads": {}}
        self.requests: GrowingPool | None = None  # the pool its threads take connections from

    def error_log(self, *args: object, **kwargs: object) -> None:
        pass

    def put_conn(self, conn: object) -> None:
        pass


class HeldConnection:
    """A connection whose request lasts until the test lets it go."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.started = threading.Event()

    def communicate(self) -> bool:
        self.started.set()
        self.gate.wait(10)
        return False

    def close(self) -> None:
        pass


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    gate = threading.Event()
    yield gate
    gate.set()


def started_pool(minimum: int, maximum: int) -> GrowingPool:
    server = FakeServer()
    pool = server.requests = GrowingPool(server, min=minimum, max=maximum)
    pool.start()
    return pool


def hold(pool: GrowingPool, gate: threading.Event, count: int) -> list[HeldConnection]:
    held = [HeldConnection(gate) for _ in range(count)]
    for conn in held:
        pool.put(conn)
    return held


@pytest.fixture
def pools(gate: threading.Event) -> Iterator[Callable[[int, int], GrowingPool]]:
    """``pools(min, max)``: started pools, stopped at the end (after the gate opens)."""
    made: list[GrowingPool] = []

    def make(minimum: int, maximum: int) -> GrowingPool:
        made.append(started_pool(minimum, maximum))
        return made[-1]

    yield make
    gate.set()
    for pool in made:
        pool.stop(timeout=5)


def test_a_load_within_the_first_threads_adds_none(gate: threading.Event, pools) -> None:
    pool = pools(2, 4)
    held = hold(pool, gate, 2)
    wait_until(lambda: all(conn.started.is_set() for conn in held))
    assert len(pool._threads) == 2


def test_waiting_connections_add_threads_up_to_the_limit(gate: threading.Event, pools) -> None:
    pool = pools(2, 4)
    held = hold(pool, gate, 6)
    wait_until(lambda: sum(conn.started.is_set() for conn in held) == 4, message="4 requests served at once")
    assert len(pool._threads) == 4
    gate.set()
    wait_until(lambda: all(conn.started.is_set() for conn in held))


def test_a_stopping_server_adds_none(gate: threading.Event, pools) -> None:
    pool = pools(1, 4)
    pool.server.ready = False
    hold(pool, gate, 3)
    assert len(pool._threads) == 1


def test_the_pool_starts_with_the_first_threads_and_keeps_the_configured_limit() -> None:
    class Made:
        requests = GrowingPool(FakeServer(), min=1, max=1, accepted_queue_size=7, accepted_queue_timeout=3)

    pool = growing_pool(Made(), 32)
    assert (pool.min, pool.max) == (FIRST_THREADS, 32)
    assert pool._queue.maxsize == 7 and pool._queue_put_timeout == 3
    assert growing_pool(Made(), 4).min == 4
