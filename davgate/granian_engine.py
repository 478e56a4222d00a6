"""Serve with granian, a Rust HTTP server, instead of cheroot (``server.engine: granian``).

cheroot stays the default. granian parses HTTP and moves bytes in Rust and
runs the WSGI application on a pool of threads in each worker process, which
lifts the ceiling for small requests several times over; request and
response bodies still stream (a 1 GiB PUT or GET keeps a worker's memory
flat). granian starts its own worker processes, which import
:func:`application` and build the app from the file named in
``DAVGATE_CONFIG_FILE``; the parent has already recovered the mounts and
created the state store.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from davgate import lifeline
from davgate.app import build_app
from davgate.config import Config, load_config
from davgate.ops import notify

CONFIG_ENV = "DAVGATE_CONFIG_FILE"
PARENT_ENV = "DAVGATE_GRANIAN_PARENT"  # the pid of `davgate serve`, which runs granian's main process


def application() -> Callable:
    """The factory each granian worker calls once."""
    lifeline.exit_with_parent(int(os.environ[PARENT_ENV]))
    return EagerStart(build_app(load_config(os.environ[CONFIG_ENV])))


class EagerStart:
    """Runs the application until it has called start_response.

    WSGI lets an application call start_response when its body is first
    iterated, and WsgiDAV's middlewares do; granian reads the status and
    headers as soon as the application returns. So the first chunk is
    produced here, then handed back in front of the rest.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        chunks = iter(body)
        try:
            first = next(chunks)
        except StopIteration:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return []
        return Resumed(first, chunks, body)


class Resumed:
    """A response body whose first chunk was already taken."""

    def __init__(self, first: bytes, rest: Iterator[bytes], body: Iterable[bytes]) -> None:
        self.first = first
        self.rest = rest
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        yield from self.rest

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def free_port(host: str) -> int:
    """A port to give granian when the user asked for any (port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def announce(host: str, port: int, message: str, timeout: float = 60.0) -> None:
    """Say we are listening once granian accepts connections (it binds in its own time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
            continue
        print(f"davgate: {message}", file=sys.stderr, flush=True)
        notify.ready(message)
        return


def serve_granian(config: Config, config_path: Path, workers: int) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    server = config.server
    port = server.port or free_port(server.host)
    os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
    os.environ[PARENT_ENV] = str(os.getpid())
    shown = f"[{server.host}]" if ":" in server.host else server.host
    message = f"listening on http://{shown}:{port} ({workers} worker{'s' if workers > 1 else ''}, granian)"
    threading.Thread(target=announce, args=(server.host, port, message), daemon=True).start()
    engine = Granian(
        "davgate.granian_engine:application",
        factory=True,
        address=server.host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=server.threads,
        backlog=server.backlog,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=int(server.shutdown_timeout) + 1,
    )
    engine.on_shutdown(notify.stopping)
    engine.serve()
    return 0
