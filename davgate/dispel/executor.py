"""A bounded pool of pipeline processes, with a time limit on every run.

Processes, not threads: a thread cannot be stopped, so a runaway element
(an endless loop, a huge allocation) would keep a server thread and its
memory for good. A process is killed when its run's time is up; the client
gets 504 and the next run starts a fresh process. The pool holds at most
``workers`` processes, starts them only when needed and ends them after
``idle_timeout`` seconds without work, so an idle server carries none.

Each process is a fresh interpreter (``python -m davgate.dispel.worker``),
never a fork of the threaded server; it talks over a socket pair (see
:mod:`davgate.dispel.worker`). It inherits the server's ``sys.path``, so
elements installed beside davgate load there too.

Limits, so that one template cannot take the server down:

- ``memory_limit``: each process's address space is capped; a run that
  needs more fails with 507 and its process is replaced (a process that
  ran out of memory is not trusted with another run). Numerical libraries
  run one thread per process unless the environment says otherwise, so
  that their per-thread buffers fit the cap on machines with many cores.
- ``max_read``: an input that is not a local file is read through the
  server, which answers each read of a process in parts of at most
  :data:`READ_PART` bytes (the server never holds more of one run's input
  than that), and refuses with 507 a single read larger than ``max_read``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, BinaryIO

from davgate.dispel.errors import (
    DispelError,
    ExecutionFailed,
    OverLimit,
    TimedOut,
    from_status,
    one_line,
)
from davgate.dispel.pipeline import Job, MiB, Outcome

if TYPE_CHECKING:
    from davgate.config.schema import DispelMount

log = logging.getLogger("davgate.dispel.executor")
STARTUP_TIMEOUT = 60.0
READ_PART = 4 * MiB  # the most the server reads and sends at once for a process's input
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class PipelineProcess:
    """One ``davgate.dispel.worker`` process and its end of the socket."""

    def __init__(self, env: dict[str, str], memory_limit: int = 0) -> None:
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "davgate.dispel.worker",
                    str(child.fileno()),
                    str(os.getpid()),
                    str(memory_limit),
                ],
                pass_fds=(child.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.last_used = time.monotonic()
        self.ready = False

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        try:
            if not self.conn.poll(timeout):
                raise ExecutionFailed(f"a pipeline process did not start within {timeout:g} s")
            self.conn.recv()
        except (EOFError, OSError):
            raise ExecutionFailed(f"a pipeline process failed to start ({self.exit_status()})") from None
        self.ready = True

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_status(self) -> str:
        code = self.process.poll()
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("stop",))
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class Executor:
    """Runs jobs in at most ``workers`` pipeline processes."""

    def __init__(
        self,
        workers: int,
        *,
        idle_timeout: float = 300.0,
        startup_timeout: float = STARTUP_TIMEOUT,
        memory_limit: int = 0,
        max_read: int = 256 * MiB,
    ) -> None:
        self.workers = max(1, workers)
        self.idle_timeout = idle_timeout
        self.startup_timeout = startup_timeout
        self.memory_limit = memory_limit
        self.max_read = max_read
        self._slots = threading.BoundedSemaphore(self.workers)
        self._lock = threading.Lock()
        self._idle: list[PipelineProcess] = []
        self._all: set[PipelineProcess] = set()
        self._closed = threading.Event()
        self._reaper: threading.Thread | None = None
        self._env = {**ONE_THREAD, **os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

    @classmethod
    def for_mount(cls, options: DispelMount) -> Executor:
        """The pool a dispel mount's options describe."""
        return cls(
            options.workers,
            idle_timeout=options.idle_timeout,
            memory_limit=options.memory_limit,
            max_read=options.max_remote_read,
        )

    def run(
        self,
        job: Job,
        *,
        time_limit: float,
        reader: Callable[[], BinaryIO] | None = None,
        started: Callable[[], None] | None = None,
    ) -> Outcome:
        """Run ``job``; ``reader`` opens the input for a process that cannot open it itself.

        ``started`` is called when the job is handed to a process (one
        pipeline run). Raises TimedOut (504) after ``time_limit`` seconds,
        killing the process; the job's own errors as they were reported.
        """
        if not self._slots.acquire(timeout=time_limit):
            raise TimedOut(f"all {self.workers} pipeline processes stayed busy for {time_limit:g} s")
        try:
            process = self._take()
            if started is not None:
                started()
            return self._exchange(process, job, time_limit, reader)
        finally:
            self._slots.release()

    def _take(self) -> PipelineProcess:
        if self._closed.is_set():
            raise ExecutionFailed("the server is shutting down")
        with self._lock:
            while self._idle:
                process = self._idle.pop()
                if process.alive():
                    return process
                self._forget(process)
            process = PipelineProcess(self._env, self.memory_limit)
            self._all.add(process)
            self._start_reaper()
        try:
            process.wait_ready(self.startup_timeout)
        except DispelError:
            self._discard(process)
            raise
        return process

    def _exchange(
        self, process: PipelineProcess, job: Job, time_limit: float, reader: Callable[[], BinaryIO] | None
    ) -> Outcome:
        deadline = time.monotonic() + time_limit
        stream: BinaryIO | None = None
        try:
            process.conn.send(("run", job))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not process.conn.poll(remaining):
                    self._discard(process)
                    raise TimedOut(f"template {job.template} ran longer than its time limit of {time_limit:g} s")
                message = process.conn.recv()
                if message[0] == "read":
                    if stream is None:
                        stream = self._open_input(process, job, reader)
                    self._answer_read(process, stream, message[1], message[2])
                    continue
                return self._finish(process, message)
        except (EOFError, OSError, BrokenPipeError):
            self._discard(process)
            raise ExecutionFailed(f"the pipeline process of {job.template} died ({process.exit_status()})") from None
        finally:
            if stream is not None:
                stream.close()

    def _finish(self, process: PipelineProcess, message: tuple) -> Outcome:
        """The outcome of a run that ended; its process goes back to the pool unless it ran out of memory."""
        if message[0] == "done":
            self._give_back(process)
            return message[1]
        error = from_status(message[1], message[2])
        if isinstance(error, OverLimit):
            self._discard(process)
        else:
            self._give_back(process)
        raise error

    def _open_input(self, process: PipelineProcess, job: Job, reader: Callable[[], BinaryIO] | None) -> BinaryIO:
        if reader is None:
            raise ExecutionFailed(f"input {job.input_rel} has no reader")
        return reader()

    def _answer_read(self, process: PipelineProcess, stream: BinaryIO, offset: int, size: int) -> None:
        """Send up to :data:`READ_PART` bytes at ``offset``; the process asks again for the rest."""
        if size > self.max_read:
            process.conn.send(("readerror", OverLimit.status, self._too_large(size)))
            return
        try:
            stream.seek(offset)
            parts, left = [], min(size, READ_PART)
            while left > 0:
                part = stream.read(left)
                if not part:
                    break
                parts.append(part)
                left -= len(part)
            process.conn.send(("data", b"".join(parts)))
        except DispelError as error:
            process.conn.send(("readerror", error.status, error.reason))
        except Exception as error:  # noqa: BLE001 - a storage error: the run fails, the process lives on
            process.conn.send(("readerror", 500, one_line(f"reading the input failed: {error}")))

    def _too_large(self, size: int) -> str:
        return (
            f"the pipeline reads {size} bytes of its input at once; reads from a source that is not a local "
            f"folder may have at most {self.max_read} bytes (the dispel mount's max_remote_read)"
        )

    def _give_back(self, process: PipelineProcess) -> None:
        process.last_used = time.monotonic()
        with self._lock:
            if self._closed.is_set():
                self._forget(process)
                process.stop()
            else:
                self._idle.append(process)

    def _discard(self, process: PipelineProcess) -> None:
        with self._lock:
            self._forget(process)
        process.kill()

    def _forget(self, process: PipelineProcess) -> None:
        self._all.discard(process)
        if process in self._idle:
            self._idle.remove(process)

    def _start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="davgate-dispel-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """End processes that have been idle for longer than ``idle_timeout``."""
        interval = max(0.05, min(self.idle_timeout / 2, 30.0))
        while not self._closed.wait(interval):
            cutoff = time.monotonic() - self.idle_timeout
            with self._lock:
                old = [p for p in self._idle if p.last_used < cutoff]
                for process in old:
                    self._forget(process)
            for process in old:
                process.stop()

    def process_count(self) -> int:
        with self._lock:
            return len(self._all)

    def close(self) -> None:
        """Stop idle processes and kill busy ones; later runs fail."""
        self._closed.set()
        with self._lock:
            processes = list(self._all)
            self._all.clear()
            self._idle.clear()
        for process in processes:
            if process.ready:
                process.stop()
            else:
                process.kill()
