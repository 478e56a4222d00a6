"""The connection pool every record kind of the PostgreSQL state store shares.

One :class:`psycopg_pool.ConnectionPool` per store, opened in the process
that uses it: its threads and sockets must not cross ``fork()``, so a store
opened before fork refuses use, as the other stores do. Record kinds
(locks, properties, ...) are mixins over this class, one module each; they
run their statements through :meth:`PostgresConnection._connection` (one
statement, committed at once) or :meth:`PostgresConnection._transaction`
(several, all or none). Transactions are short: no call waits for anything
but the database inside one.

Errors are translated here, once (their text names no host or user: it may
reach a client in a 503): a server that cannot be reached, went
away in the middle of a call, or did not hand out a connection within
``timeout`` is :class:`~davgate.state.StoreUnavailable`; a row or advisory
lock held past ``timeout`` by another process, or a deadlock, is
:class:`~davgate.state.StoreBusy`. Both are answered 503 with Retry-After.
The pool replaces broken connections by itself, so the store serves again
as soon as the server is back, without a restart.
"""

from __future__ import annotations

import math
import os
import select
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.conninfo
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from davgate.state import StateStoreError, StoreBusy, StoreUnavailable, redact_url
from davgate.state.postgres.schema import migrate

SCHEMES = ("postgresql://", "postgres://")


class PostgresConnection:
    """Holds the pool; checks that the store may still be used; translates errors.

    ``pool`` is the most connections this process opens (one per thread
    using the store at once); ``timeout`` the seconds a call may wait to
    connect, for a pooled connection, or for another process's lock.
    """

    def __init__(self, url: str, *, pool: int = 10, timeout: float = 5.0) -> None:
        if not url.startswith(SCHEMES):
            raise StateStoreError(f"state store {redact_url(url)}: expected a postgresql:// URL")
        if pool < 1 or not timeout > 0:
            raise StateStoreError(f"state store {redact_url(url)}: pool must be at least 1 and timeout positive")
        self.url = url
        self.timeout = timeout
        self._pid = os.getpid()
        self._closed = False
        self._conninfo = _conninfo(url, timeout)
        self._migrate()
        self._pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=pool,
            kwargs={"autocommit": True},
            check=_check,
            timeout=timeout,
            reconnect_timeout=timeout,  # then the slot is refilled on demand, at once
            name="davgate-state",
            open=False,
        )
        self._pool.open()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.url)!r})"

    def _migrate(self) -> None:
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as db:
                migrate(db, repr(self))
        except psycopg.Error as error:  # unreachable, refused, bad password, not allowed
            raise StateStoreError(f"state store {self!r} cannot be used: {error}") from error

    def _usable(self) -> ConnectionPool:
        if self._closed:
            raise StateStoreError(f"state store {self!r} is closed")
        if os.getpid() != self._pid:  # the pool's threads and sockets stayed in the parent
            raise StateStoreError(f"state store {self!r} was opened before fork; open it per worker")
        return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection in autocommit mode: each statement is its own transaction."""
        pool = self._usable()
        try:
            with pool.connection() as db:
                yield db
        except PoolTimeout as error:
            raise StoreUnavailable(
                f"the state store (PostgreSQL) gave no connection within {self.timeout:g} s"
            ) from error
        except (pg_errors.LockNotAvailable, pg_errors.QueryCanceled, pg_errors.DeadlockDetected) as error:
            raise StoreBusy(f"the state store (PostgreSQL) stayed busy past its timeout ({error.sqlstate})") from error
        except psycopg.OperationalError as error:  # the server went away mid-call
            raise StoreUnavailable(
                f"the state store (PostgreSQL) went away ({error.sqlstate or 'no answer'})"
            ) from error

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """A pooled connection inside one transaction: committed at the end, rolled back on error."""
        with self._connection() as db, db.transaction():
            yield db

    def close(self) -> None:
        self._closed = True
        self._pool.close(timeout=self.timeout)


def _conninfo(url: str, timeout: float) -> str:
    """``url`` with davgate's session settings; a malformed one is refused without echoing it."""
    waits = f"-c lock_timeout={int(timeout * 1000)}"  # a row lock held elsewhere: busy, not a hang
    try:
        return psycopg.conninfo.make_conninfo(
            url,
            application_name="davgate",
            connect_timeout=max(1, math.ceil(timeout)),
            tcp_user_timeout=int(timeout * 1000),  # unacknowledged sends give up, not hang
            options=waits,
        )
    except psycopg.ProgrammingError as error:  # its text may quote the url, password and all
        raise StateStoreError(f"state store {redact_url(url)}: not a valid PostgreSQL URL") from error


def _check(db: psycopg.Connection) -> None:
    """Before lending an idle connection: ask the server only if its socket has news.

    An idle connection's socket is readable only when the server wrote
    something unasked (it shut down, or ended the session); then one empty
    query tells whether the connection still works. Otherwise no round trip.
    """
    poller = select.poll()  # not select(): a busy process's descriptors go past FD_SETSIZE
    poller.register(db.fileno(), select.POLLIN)
    if poller.poll(0):
        ConnectionPool.check_connection(db)
