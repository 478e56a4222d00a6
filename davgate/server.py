"""Serve the application with cheroot: one socket, one or more worker processes.

The parent process recovers every mount (removes litter of dead uploads),
binds the listening socket, and only then says it is listening. With one
worker it serves in-process; with more it forks workers that share the
socket and the state store, restarts any that die, and forwards SIGTERM and
SIGINT to them for a graceful stop (in-flight requests finish, bounded by
``server.shutdown_timeout``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from cheroot import wsgi

from davgate.app import build_app, build_mounts, open_state
from davgate.config import Config

log = logging.getLogger("davgate.server")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


class PreboundServer(wsgi.Server):
    """A cheroot server that serves a socket bound by the parent process."""

    def __init__(self, sock: socket.socket, app, config: Config) -> None:
        super().__init__(
            sock.getsockname()[:2],
            app,
            numthreads=config.server.threads,
            request_queue_size=config.server.backlog,
            shutdown_timeout=config.server.shutdown_timeout,
            server_name="davgate",
        )
        self.prebound = sock
        self.max_request_header_size = config.server.max_header_bytes

    def bind(self, family, type, proto=0):  # noqa: A002 - cheroot's signature
        self.socket = self.prebound


def serve_worker(sock: socket.socket, config: Config) -> int:
    """Serve requests in this process until SIGTERM/SIGINT."""
    app = build_app(config)
    server = PreboundServer(sock, app, config)
    stopping = threading.Event()

    def on_signal(signum, frame) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.stop, name="davgate-stop", daemon=True).start()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        server.prepare()
        server.serve()
    finally:
        app.close()
    return 0


def worker_count(config: Config) -> int:
    return config.server.workers or os.cpu_count() or 1


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def prepare(config: Config) -> None:
    """Work done once, before any worker starts: recover mounts, create the state store."""
    for mount in build_mounts(config).values():
        mount.start()
    open_state(config).close()


def serve(config: Config, host: str | None = None, port: int | None = None, config_path: Path | None = None) -> int:
    """Run the server in the foreground; returns the exit code."""
    server = replace(config.server, host=host or config.server.host, port=config.server.port if port is None else port)
    config = replace(config, server=server)
    prepare(config)
    if server.engine == "granian":
        from davgate.granian_engine import serve_granian

        return serve_granian(config, config_path, worker_count(config))
    sock = listen(server.host, server.port, server.backlog)
    count = worker_count(config)
    print(f"davgate: listening on {url_of(sock)} ({count} worker{'s' if count > 1 else ''})", file=sys.stderr, flush=True)
    if count == 1:
        return serve_worker(sock, config)
    return Supervisor(sock, config, count).run()


class Supervisor:
    """Forks the workers, replaces the ones that die, stops them all on a signal."""

    def __init__(self, sock: socket.socket, config: Config, count: int) -> None:
        self.sock = sock
        self.config = config
        self.count = count
        self.children: set[int] = set()
        self.stopping = False

    def spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            code = 1
            try:
                code = serve_worker(self.sock, self.config)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.children.add(pid)

    def on_signal(self, signum, frame) -> None:
        self.stopping = True
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.on_signal)
        for _ in range(self.count):
            self.spawn()
        deadline = None
        while self.children:
            if self.stopping and deadline is None:
                deadline = time.monotonic() + self.config.server.shutdown_timeout + 5
            if deadline is not None and time.monotonic() > deadline:
                self.kill_all()
            self.reap()
        return 0

    def reap(self) -> None:
        """Wait for a worker to exit; while stopping, poll so the deadline holds."""
        try:
            pid, status = os.waitpid(-1, os.WNOHANG if self.stopping else 0)
        except ChildProcessError:
            self.children.clear()
            return
        if pid == 0:
            time.sleep(0.1)
            return
        self.children.discard(pid)
        if not self.stopping:
            log.error("worker %d exited (status %d); starting a new one", pid, status)
            self.spawn()

    def kill_all(self) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
