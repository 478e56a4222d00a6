"""Serve the application with cheroot: one socket, one or more worker processes.

The parent process recovers every mount (removes litter of dead uploads),
binds the listening socket, and only then says it is listening. With one
worker it serves in-process; with more it forks workers that share the
socket and the state store, restarts any that die, and forwards SIGTERM and
SIGINT to them for a graceful stop (in-flight requests finish, bounded by
``server.shutdown_timeout``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cheroot import wsgi

from davgate import lifeline, sendfile, sockfile, thread_pool
from davgate.app import build_app, build_mounts, open_state
from davgate.config import Config
from davgate.forked import run_in_child
from davgate.hardening import check_transport
from davgate.ops import notify, startup

log = logging.getLogger("davgate.server")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MALLOC_ARENAS = "2"  # see limit_malloc_arenas
M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas at two, unless the environment already sets MALLOC_ARENA_MAX.

    glibc gives busy threads arenas of their own; with 32 request threads a
    worker's RSS fragments and climbs for minutes under mixed load (about
    80 to 270 MiB in a 5-minute soak), while with two arenas it levels off
    near 120 MiB (docs/RELIABILITY.md, "Soak"). Processes started later
    (pipeline workers, other engines) inherit the variable.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = MALLOC_ARENAS
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, int(MALLOC_ARENAS))
    except (OSError, AttributeError):
        pass  # not glibc: nothing to cap


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

    ConnectionClass = sockfile.Connection  # cheroot's connection, minus its pure-Python socket copies

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
        self.gateway = sendfile.SendfileGateway  # local files' GET bodies go out by sendfile
        self.max_request_header_size = config.server.max_header_bytes
        self.ssl_adapter = startup.ssl_adapter(config.server)  # None: plain HTTP
        # few threads for a steady load, all for bursts
        self.requests = thread_pool.growing_pool(self, config.server.threads)

    def bind(self, family, type, proto=0):  # noqa: A002 - cheroot's signature
        self.socket = self.prebound

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        """cheroot's own messages go through logging (so JSON logs stay JSON), not straight to stderr."""
        log.log(level, "%s", msg, exc_info=traceback)


def serve_worker(sock: socket.socket, config: Config, ready: Callable[[], None] = lambda: None) -> int:
    """Serve requests in this process until SIGTERM/SIGINT; ``ready()`` once it can."""
    app = build_app(config)
    server = PreboundServer(sock, app, config)
    stopping = threading.Event()

    def on_signal(signum, frame) -> None:
        if not stopping.is_set():
            stopping.set()
            notify.stopping()
            threading.Thread(target=server.stop, name="davgate-stop", daemon=True).start()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        server.prepare()
        if not stopping.is_set():  # a signal during prepare() found the server not ready: stop() did nothing
            ready()
            server.serve()
    finally:
        app.close()
    return 0


def worker_count(config: Config) -> int:
    return config.server.workers or os.cpu_count() or 1


def url_of(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def prepare(config: Config) -> None:
    """Work done once, before any worker starts: recover mounts, create the state store.

    The recovery runs in a child process, so the supervisor (and every worker
    it forks) does not keep what the mounts built: S3 clients, SFTP sessions,
    their buffers. A failure there is raised here as it was raised there.
    """
    startup.prepare(config)  # TLS files, status lines, the metrics folder
    run_in_child(recover, config)


def recover(config: Config) -> None:
    """Start every mount once (litter of dead uploads removed, buckets checked, host keys pinned); create the state store."""
    mounts = build_mounts(config)
    try:
        for mount in mounts.values():
            mount.start()
    finally:
        for mount in mounts.values():
            mount.close()
    open_state(config).close()


def serve(config: Config, host: str | None = None, port: int | None = None, config_path: Path | None = None) -> int:
    """Run the server in the foreground; returns the exit code."""
    server = replace(config.server, host=host or config.server.host, port=config.server.port if port is None else port)
    config = replace(config, server=server)
    check_transport(config)  # no credentials over plain HTTP beyond loopback, unless allowed
    limit_malloc_arenas()
    prepare(config)
    if server.engine == "granian":
        from davgate.granian_engine import serve_granian

        return serve_granian(config, config_path, worker_count(config))
    sock = listen(server.host, server.port, server.backlog)
    count = worker_count(config)
    url = url_of(sock, tls=server.tls_cert is not None)

    def announce() -> None:
        message = f"listening on {url} ({count} worker{'s' if count > 1 else ''})"
        print(f"davgate: {message}", file=sys.stderr, flush=True)
        notify.ready(message)

    if count == 1:
        return serve_worker(sock, config, ready=announce)  # once its application is built
    announce()  # the socket queues connections until a worker takes them
    return Supervisor(sock, config, count).run()


QUICK_EXIT = 10.0  # seconds: a worker that dies sooner failed to start
MAX_QUICK_EXITS = 5  # in a row: give up instead of restarting forever


class Supervisor:
    """Forks the workers, replaces the ones that die, stops them all on a signal."""

    def __init__(self, sock: socket.socket, config: Config, count: int) -> None:
        self.sock = sock
        self.config = config
        self.count = count
        self.children: dict[int, float] = {}  # pid -> when it started
        self.stopping = False
        self.failed = False
        self.quick_exits = 0

    def spawn(self) -> None:
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:
            lifeline.die_with_parent(supervisor)
            notify.forget()  # only the supervisor speaks to the service manager
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
        self.children[pid] = time.monotonic()

    def on_signal(self, signum, frame) -> None:
        if not self.stopping:
            notify.stopping()
        self.stopping = True
        for pid in list(self.children):
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
        return 1 if self.failed else 0

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
        started = self.children.pop(pid, time.monotonic())
        if self.stopping:
            return
        quick = time.monotonic() - started < QUICK_EXIT
        self.quick_exits = self.quick_exits + 1 if quick else 0
        if self.quick_exits >= MAX_QUICK_EXITS:
            log.error("workers keep failing as they start (see above); stopping")
            self.failed = True
            self.on_signal(signal.SIGTERM, None)
            return
        log.error("worker %d exited (status %d); starting a new one", pid, status)
        time.sleep(min(5.0, 0.1 * 2**self.quick_exits) if quick else 0)
        self.spawn()

    def kill_all(self) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
