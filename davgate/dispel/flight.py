"""Single-flight: many identical cold requests, one execution.

Within a process, the first request for a key leads and the others wait on
an event. Across processes, the leader also takes a lease on the key in the
state store; a request whose lease is refused waits for the result to
appear (polling with backoff), for the lease to end (then it leads), or for
the holder's failure, which the lease keeps for a moment so that everyone
waiting gets the same answer. A holder that died leaves a lease that simply
expires. Every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from davgate.dispel.errors import DispelError, ExecutionFailed, TimedOut, from_status
from davgate.state import StateStore

T = TypeVar("T")
FAILURE_MEMORY = 2.0  # seconds a failure stays visible to those waiting for it
POLL_FIRST = 0.005
POLL_MAX = 0.1


@dataclass
class _Flight(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    error: DispelError | None = None


class SingleFlight:
    """Runs ``produce`` at most once at a time per key, across threads and processes."""

    def __init__(self, store: StateStore, holder: str | None = None) -> None:
        self.store = store
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def run(self, key: str, *, ready: Callable[[], T | None], produce: Callable[[], T], wait: float, lease: float) -> T:
        """The result of ``key``: ``ready()`` if it exists, else ``produce()`` once.

        ``wait`` bounds how long a request waits for another's run;
        ``lease`` is how long a run may hold the key before others may
        assume its process died.
        """
        deadline = time.monotonic() + wait
        while True:
            result = ready()
            if result is not None:
                return result
            with self._lock:
                flight = self._flights.get(key)
                leading = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight()
            if leading:
                return self._lead(key, flight, ready, produce, deadline, lease)
            if not flight.done.wait(max(0.0, deadline - time.monotonic())):
                raise TimedOut("waited longer than the time limit for the same request to finish")
            if flight.error is not None:
                raise from_status(flight.error.status, flight.error.reason)

    def _lead(
        self,
        key: str,
        flight: _Flight,
        ready: Callable[[], T | None],
        produce: Callable[[], T],
        deadline: float,
        lease: float,
    ) -> T:
        try:
            return self._across_processes(key, ready, produce, deadline, lease)
        except DispelError as error:
            flight.error = error
            raise
        except BaseException as error:
            flight.error = ExecutionFailed(f"{type(error).__name__}: {error}")
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _across_processes(
        self, key: str, ready: Callable[[], T | None], produce: Callable[[], T], deadline: float, lease: float
    ) -> T:
        delay = POLL_FIRST
        while True:
            held = self.store.acquire_lease(key, self.holder, time.time() + lease)
            if held.holder == self.holder:
                return self._produce(key, ready, produce)
            if held.status is not None:
                raise from_status(held.status, held.reason)
            if time.monotonic() + delay > deadline:
                raise TimedOut(
                    "waited longer than the time limit for another server process to finish the same request"
                )
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)
            result = ready()
            if result is not None:
                return result

    def _produce(self, key: str, ready: Callable[[], T | None], produce: Callable[[], T]) -> T:
        """Holding the lease: check once more (a holder may just have finished), then make it."""
        try:
            result = ready()
            if result is None:
                result = produce()
        except DispelError as error:
            self.store.release_lease(key, self.holder, status=error.status, reason=error.reason, keep=FAILURE_MEMORY)
            raise
        except BaseException:
            self.store.release_lease(key, self.holder)
            raise
        self.store.release_lease(key, self.holder)
        return result
