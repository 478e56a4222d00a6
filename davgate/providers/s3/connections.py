"""boto3 clients whose every connection is opened by an opener (the outbound rule, for API-made mounts).

botocore opens sockets in urllib3's connection classes, resolving the
endpoint's name itself. For an endpoint a user chose, the address must be
checked when the connection is made (DNS answers change), so a client of
such a mount sends through a :class:`CheckedSession`: botocore's own HTTP
session, whose connection classes open their socket with the opener. It is
put in front of the client's default session with botocore's public
``before-send`` event (a handler that returns a response is the send), per
client: nothing global changes, and the operator's own mounts keep
botocore's defaults.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from botocore.awsrequest import AWSHTTPConnection, AWSHTTPConnectionPool, AWSHTTPSConnection, AWSHTTPSConnectionPool
from botocore.httpsession import URLLib3Session
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from davgate.hardening.outbound import Opener

__all__ = ["CheckedSession", "send_through"]


def checked_connection(base: type, opener: Opener) -> type:
    """``base`` (an urllib3 connection class) opening its socket with ``opener``."""

    def _new_conn(self: Any) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        try:
            sock = opener(self._dns_host, self.port, timeout)
        except TimeoutError as error:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from error
        except OSError as error:  # the outbound rule's refusal is one
            raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error
        for option in self.socket_options or ():
            sock.setsockopt(*option)
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    return type(f"Checked{base.__name__}", (base,), {"_new_conn": _new_conn})


class CheckedSession(URLLib3Session):
    """botocore's HTTP session, its connections opened with ``opener``; no proxies from the environment."""

    def __init__(self, opener: Opener, **arguments: Any) -> None:
        super().__init__(**arguments)
        pools = {
            "http": type("CheckedHTTPPool", (AWSHTTPConnectionPool,), {
                "ConnectionCls": checked_connection(AWSHTTPConnection, opener)}),
            "https": type("CheckedHTTPSPool", (AWSHTTPSConnectionPool,), {
                "ConnectionCls": checked_connection(AWSHTTPSConnection, opener)}),
        }  # fmt: skip
        self._pool_classes_by_scheme.update(pools)  # the dict its pool managers read when they make a pool

    def on_send(self, request: Any, **_event: Any) -> Any:
        """botocore's ``before-send`` handler: send ``request`` here and answer with the response."""
        return self.send(request)


def send_through(client: Any, opener: Opener) -> CheckedSession:
    """Make ``client`` send every request through a :class:`CheckedSession`; close that with the client."""
    config = client.meta.config
    session = CheckedSession(
        opener,
        timeout=(config.connect_timeout, config.read_timeout),
        max_pool_connections=config.max_pool_connections,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    client.meta.events.register("before-send.s3", session.on_send)
    return session
