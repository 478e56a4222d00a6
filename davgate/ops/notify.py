"""Readiness for a service manager: systemd's notification protocol, one datagram per state.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a path, or an abstract
name starting with ``@``) and waits for ``READY=1`` before it counts the
service as started; ``STOPPING=1`` says a stop has begun. Without the
variable nothing is sent. Only the process systemd started (``serve``'s
parent) speaks: workers never do.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("davgate.server")
NOTIFY_SOCKET = "NOTIFY_SOCKET"


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager; whether it was sent."""
    address = os.environ.get(NOTIFY_SOCKET, "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as error:
        log.warning("could not tell the service manager %s: %s", state, error)
        return False
    return True


def forget() -> None:
    """In a child process: never speak to the service manager."""
    os.environ.pop(NOTIFY_SOCKET, None)


def ready(status: str) -> None:
    notify(f"READY=1\nSTATUS={status}")


def stopping() -> None:
    notify("STOPPING=1")
