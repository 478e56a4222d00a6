"""cheroot's pool of request threads, started small and grown while connections wait.

cheroot starts all ``server.threads`` threads at once and wakes the one
that has waited longest for each request, so under a steady load every
thread takes its turn. On two cores, 16 keep-alive clients cost about an
eighth more CPU per small request with 32 threads than with 8 (wrk, 4 KiB
GETs: about 320 against 280 µs per request, over seven interleaved runs).
:class:`GrowingPool` starts with :data:`FIRST_THREADS` and adds threads,
up to ``server.threads``, whenever a connection is queued while every
thread is busy: a steady load is served by as many threads as it needs,
and bursts or slow transfers still get the full pool.
"""

from __future__ import annotations

import threading
from typing import Any

from cheroot.workers import threadpool

FIRST_THREADS = 8


class GrowingPool(threadpool.ThreadPool):
    """A cheroot ``ThreadPool`` of ``min`` threads that grows to ``max`` when work waits."""

    def __init__(self, server: Any, min: int, max: int, **options: Any) -> None:
        super().__init__(server, min=min, max=max, **options)
        self.adding = threading.Lock()

    def put(self, obj: Any) -> None:
        super().put(obj)
        if len(self._threads) < self.max and self.server.ready and self.qsize > self.idle:
            self.add_threads()

    def add_threads(self) -> None:
        """Threads for the connections that wait, as far as ``max`` allows (a new thread counts as idle)."""
        with self.adding:
            while len(self._threads) < self.max and self.qsize > self.idle:
                self._threads.append(self._spawn_worker())  # not cheroot's grow(): that sleeps until it runs


def growing_pool(server: Any, threads: int) -> GrowingPool:
    """The pool for ``server`` (in place of the one it made, not yet started): ``FIRST_THREADS``, up to ``threads``."""
    made = server.requests
    return GrowingPool(
        server,
        min=min(FIRST_THREADS, threads),
        max=threads,
        accepted_queue_size=made._queue.maxsize,
        accepted_queue_timeout=made._queue_put_timeout,
    )
