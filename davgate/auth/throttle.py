"""Failed-authentication throttling: too many failures, and the next try is 429 before any check.

Every request that carries credentials (an ``Authorization`` header, or the
management API's ``X-Access-Token``) is an authentication attempt, whatever
checks it (the htpasswd file, a bearer token, a space's own access methods,
the API's token check). An attempt that is answered 401 is a failure. When a
client address, or a user name, has ``failures`` failures within the last
``window`` seconds, its next attempts are answered 429 with ``Retry-After``
(the seconds until the oldest of those failures leaves the window) without
going further in: no password hash is computed and no token is verified, so
a guesser costs davgate almost nothing and learns nothing.

What counts:

- the client address is ``REMOTE_ADDR``, what the connection came from
  (davgate reads no ``X-Forwarded-For``: behind a reverse proxy every client
  shares the proxy's address); an IPv6 client counts by its /64 network,
  as one host commonly holds a whole /64;
- the user name is the Basic user name, when the Basic password is not a
  token. Token failures count against the address only: a token cannot be
  guessed, and a user whose name is throttled (by someone guessing their
  password) keeps working with their tokens;
- a success resets nothing: with HTTP every request authenticates again,
  so a reset on success would let a guesser go on for ever next to a
  client in steady use. Successes are never slowed down.

Memory is bounded: at most ``max_entries`` addresses and as many user names
are tracked (user names as keyed digests, never as text), each with at most
``failures`` times; beyond that the ones that failed least recently are
forgotten, so rotating addresses or names cannot grow the table. The
counts are per server process: with several worker processes a client may
fail up to ``failures`` times in each.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from davgate.auth.bearer import MalformedCredentials, parse_authorization
from davgate.auth.jwt import looks_like_jwt

__all__ = ["Attempt", "AuthThrottle", "FailureLog", "ThrottleObserver", "attempt_of"]

logger = logging.getLogger("davgate.auth")

Clock = Callable[[], float]
ADDRESS, USER = "address", "user"
NAMES = {ADDRESS: "client address", USER: "user name"}


class ThrottleObserver(Protocol):
    """What the throttle reports to (the metrics)."""

    def auth_failed(self) -> None: ...

    def auth_throttled(self, scope: str) -> None: ...


class FailureLog:
    """The times of recent failures, per key; at most ``max_entries`` keys, ``failures`` times each."""

    def __init__(self, failures: int, window: float, max_entries: int, clock: Clock = time.monotonic) -> None:
        self.failures, self.window, self.max_entries = failures, window, max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._times: OrderedDict[bytes | str, deque[float]] = OrderedDict()

    def retry_after(self, key: bytes | str) -> float:
        """Seconds until ``key`` may try again; 0 if it may now."""
        with self._lock:
            times = self._times.get(key)
            if times is None or len(times) < self.failures:
                return 0.0
            return max(0.0, times[0] + self.window - self._clock())

    def failed(self, key: bytes | str) -> None:
        """Note a failure of ``key`` now; forget the least recently failed key beyond the bound."""
        now = self._clock()
        with self._lock:
            times = self._times.get(key)
            if times is None:
                times = self._times[key] = deque(maxlen=self.failures)
            self._times.move_to_end(key)
            times.append(now)
            while len(self._times) > self.max_entries:
                self._times.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._times)


@dataclass(frozen=True)
class Attempt:
    """Who an authentication attempt comes from: an address key, and a user name key or None."""

    address: str
    user: bytes | None


def attempt_of(environ: dict, user_key: Callable[[str], bytes]) -> Attempt | None:
    """The attempt a request makes; None for a request without credentials."""
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None and not environ.get("HTTP_X_ACCESS_TOKEN"):
        return None
    address = address_key(environ.get("REMOTE_ADDR", ""))
    try:
        credentials = parse_authorization(header)
    except MalformedCredentials:
        return Attempt(address, None)
    if credentials is None or credentials.user is None:
        return Attempt(address, None)
    if looks_like_jwt(credentials.secret) or looks_like_jwt(credentials.user):
        return Attempt(address, None)  # a token as the Basic password (or user name)
    return Attempt(address, user_key(credentials.user))


def address_key(remote: str) -> str:
    """The key of a client address: itself, or its /64 for IPv6; other text as it is."""
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class AuthThrottle:
    """The failure logs of one server process; :meth:`wrap` puts them in front of an application."""

    def __init__(
        self,
        failures: int,
        window: float,
        max_entries: int,
        observer: ThrottleObserver | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.by_address = FailureLog(failures, window, max_entries, clock)
        self.by_user = FailureLog(failures, window, max_entries, clock)
        self.observer = observer
        self._key = secrets.token_bytes(16)

    def user_key(self, user: str) -> bytes:
        """A short keyed digest of a user name: fixed size, and no name kept in memory."""
        return hashlib.blake2b(user.encode("utf-8", "surrogatepass"), digest_size=16, key=self._key).digest()

    def retry_after(self, attempt: Attempt) -> tuple[float, str]:
        """Seconds ``attempt`` must wait (0: none) and what is throttled (address or user)."""
        wait, scope = self.by_address.retry_after(attempt.address), ADDRESS
        if attempt.user is not None:
            user_wait = self.by_user.retry_after(attempt.user)
            if user_wait > wait:
                wait, scope = user_wait, USER
        return wait, scope

    def failed(self, attempt: Attempt) -> None:
        self.by_address.failed(attempt.address)
        if attempt.user is not None:
            self.by_user.failed(attempt.user)
        if self.observer is not None:
            self.observer.auth_failed()

    def wrap(self, app: Callable) -> Callable:
        """A WSGI application: ``app`` behind this throttle."""
        return ThrottleMiddleware(app, self)


class ThrottleMiddleware:
    """Answers 429 to throttled attempts; notes the failures (401 answers) of the others."""

    def __init__(self, app: Callable, throttle: AuthThrottle) -> None:
        self.app, self.throttle = app, throttle

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        attempt = attempt_of(environ, self.throttle.user_key)
        if attempt is None:
            return self.app(environ, start_response)
        wait, scope = self.throttle.retry_after(attempt)
        if wait > 0:
            return self.refuse(environ, start_response, wait, scope)
        noted = False

        def watching(status: str, headers: list, exc_info=None):  # noqa: ANN001, ANN202 - WSGI's own signature
            nonlocal noted
            if status.startswith("401") and not noted:
                noted = True
                self.throttle.failed(attempt)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, watching)

    def refuse(self, environ: dict, start_response: Callable, wait: float, scope: str) -> list[bytes]:
        seconds = max(1, math.ceil(wait))
        if self.throttle.observer is not None:
            self.throttle.observer.auth_throttled(scope)
        logger.warning(
            "authentication throttled (too many failures of this %s); retry after %d s", NAMES[scope], seconds
        )
        body = f"429 Too Many Requests: too many failed authentications; retry after {seconds} s\n".encode()
        start_response(
            "429 Too Many Requests",
            [
                ("Retry-After", str(seconds)),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
