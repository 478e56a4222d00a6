"""A pipeline process: ``python -m davgate.dispel.worker FD PARENT_PID [MEMORY_LIMIT]``.

It talks to its server over the socket ``FD`` (multiprocessing connection
messages): it says ``("ready",)`` once numpy and tifffile are imported, then
runs ``("run", job)`` messages one at a time and answers ``("done",
outcome)`` or ``("fail", status, reason)``. While a job runs it may ask
``("read", offset, size)`` for bytes of an input that is not a local file,
and the server answers ``("data", bytes)`` or ``("readerror", status,
reason)``. It exits when the socket closes or on ``("stop",)``; the server
kills it when a job runs out of time.

``MEMORY_LIMIT`` (bytes, 0 for none) caps the process's address space
(``RLIMIT_AS``, soft and hard, so no element can raise it), set before
numpy is imported: an allocation beyond it fails with MemoryError, which
the run reports as 507, instead of the machine running out of memory.
"""

from __future__ import annotations

import io
import resource
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from davgate.dispel import pipeline
from davgate.dispel.elements import Registry
from davgate.dispel.errors import DispelError, from_status, one_line
from davgate.dispel.pipeline import out_of_memory
from davgate.lifeline import exit_with_parent

READ_BUFFER = 1024 * 1024


class Worker:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.registries: dict[tuple[tuple[str, str], ...], Registry] = {}
        self.tiffs = pipeline.TiffCache()

    def serve(self) -> int:
        self.conn.send(("ready",))
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return 0
            if message[0] == "stop":
                self.tiffs.close()
                return 0
            if message[0] == "run":
                self.conn.send(self.run(message[1]))

    def run(self, job: pipeline.Job) -> tuple[Any, ...]:
        registry = self.registries.get(job.elements)
        if registry is None:
            registry = self.registries[job.elements] = Registry(dict(job.elements))
        source = pipeline.InputFile(
            job.input_rel, job.input_etag, path=job.input_path, opener=lambda: self.remote(job), tiffs=self.tiffs
        )
        try:
            return ("done", pipeline.run(job, registry, source))
        except DispelError as error:
            return ("fail", error.status, error.reason)
        except MemoryError:
            error = out_of_memory(f"template {job.template}")
            return ("fail", error.status, error.reason)
        except LookupError as error:
            return ("fail", 500, one_line(str(error)))
        except Exception as error:  # noqa: BLE001 - any failure of an element is the run's failure
            return ("fail", 500, one_line(f"{type(error).__name__}: {error}"))
        finally:
            source.close()

    def remote(self, job: pipeline.Job) -> io.BufferedReader:
        return io.BufferedReader(pipeline.RemoteReader(self.fetch, job.input_size), READ_BUFFER)

    def fetch(self, offset: int, size: int) -> bytes:
        self.conn.send(("read", offset, size))
        answer = self.conn.recv()
        if answer[0] == "data":
            return answer[1]
        raise from_status(answer[1], answer[2])


def limit_memory(limit: int) -> None:
    """Cap this process's address space at ``limit`` bytes (or below, if already lower); 0: no cap."""
    if limit <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str]) -> int:
    exit_with_parent(int(argv[2]))  # started from a request thread: see davgate.lifeline
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when this process ends
    limit_memory(int(argv[3]) if len(argv) > 3 else 0)
    conn = Connection(int(argv[1]))
    import numpy  # noqa: F401 - imported now so the first job does not wait for it
    import tifffile  # noqa: F401

    return Worker(conn).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
