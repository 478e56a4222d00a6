"""The outbound rule: where a user points davgate, davgate connects only to public addresses.

Users of the management API name places davgate connects to: an ``s3``
adaptor's endpoint, an ``sshfs`` adaptor's host (enrolment even tries a
password there), a copy job's webhook. Left open, that lets anyone with an
API token reach inside the network davgate runs in (a metadata service on a
link-local address, an admin port on loopback, a database on a private
network) from davgate's position, and read the answers through it.

So every such connection goes through :meth:`OutboundRule.connect`: the name
is resolved, every address it resolves to is checked, and the socket is
opened to an address that was checked, never by resolving the name again (a
name whose address changes between the check and the connection gains
nothing). An address is refused when it is loopback, link-local, private
(RFC 1918, fc00::/7, 100.64.0.0/10), unspecified, multicast, reserved or
otherwise not global, or one of the server's own, unless an entry of
``server.outbound_allow`` allows it:

- a network (``10.20.0.0/16``, ``fd00:1::/64``): any port there;
- an address or a host name (``127.0.0.1``, ``rgw.internal``): any port;
- either with a port (``127.0.0.1:7480``, ``[::1]:2222``, ``rgw.internal:7480``): that port only.

A host name entry matches the name the user gave: the operator trusts
whatever it resolves to. Any other name is refused if any one of its
addresses is (``localhost`` allowed as ``127.0.0.1:7480`` is refused where
it also resolves to ``::1``: allow ``localhost:7480`` then). Creating an infrastructure or a job checks with
:meth:`OutboundRule.check` first, so a refusal is a 400 naming the rule;
connecting checks again, because DNS answers change. Adaptors and
transfers added later call :meth:`OutboundRule.connect` (or hand
:meth:`OutboundRule.opener` to their library) and get all of this.

Mounts in the operator's own configuration file are the operator's choice
and are not subject to the rule.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Union

__all__ = ["DIRECT", "Entry", "Opener", "OutboundRefused", "OutboundRule", "parse_entry"]

log = logging.getLogger("davgate.hardening")

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple]
Resolve = Callable[[str, int], Sequence[AddrInfo]]
Opener = Callable[[str, int, Union[float, None]], socket.socket]  # (host, port, timeout) -> a connected socket
SETTING = "server.outbound_allow"
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses written as IPv6 by a NAT64 gateway


class OutboundRefused(PermissionError):
    """A connection the outbound rule refuses; ``reason`` is one line for the caller.

    An ``OSError``, so every library on the way (paramiko, urllib3,
    botocore, http.client) treats it as the failed connection it is.
    """

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    """One entry of ``server.outbound_allow``: a network, or a host name; with a port or not."""

    network: Network | None = None
    name: str | None = None
    port: int | None = None

    def allows(self, name: str, address: Address, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address.version == self.network.version and address in self.network
        return plain_name(name) == self.name


def plain_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def parse_entry(text: str) -> Entry:
    """An entry as written in the configuration; ValueError saying what is wrong."""
    text = text.strip()
    if "/" in text:
        return Entry(network=ipaddress.ip_network(text, strict=False))
    host, port = split_port(text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = plain_name(host)
        if not name or not all(part and part.replace("-", "").isalnum() and part.isascii() for part in name.split(".")):
            raise ValueError(f"expected a network, an address or a host name, with a port or not; got {text!r}")
        return Entry(name=name, port=port)
    return Entry(network=ipaddress.ip_network(address), port=port)


def split_port(text: str) -> tuple[str, int | None]:
    """``host``/``host:port``/``[v6]``/``[v6]:port``/bare IPv6 into host and port."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [address] or [address]:port, got {text!r}")
        return host, port_of(rest[1:], text) if rest else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port_of(port, text)
    return text, None


def port_of(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"expected a port from 1 to 65535 in {entry!r}")
    return int(text)


def category(address: Address) -> str | None:
    """Why ``address`` is not a public one ("a loopback address"), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None)
        if inner is not None:
            return category(inner)
    for test, what in (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (not address.is_global, "an address that is not public"),
    ):
        if test:
            return what
    return None


def is_own(address: Address) -> bool:
    """True if this host has ``address``: only an address of one of its own interfaces can be bound."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def system_resolve(host: str, port: int) -> Sequence[AddrInfo]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def direct(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connection without the rule: for the operator's own mounts."""
    return socket.create_connection((host, port), timeout=timeout)


DIRECT: Opener = direct


class OutboundRule:
    """Checks and opens connections to places users name; see the module's text."""

    def __init__(
        self,
        allow: Iterable[str] = (),
        *,
        resolve: Resolve = system_resolve,
        refused: Callable[[str], None] | None = None,
    ) -> None:
        self.entries = tuple(parse_entry(text) for text in allow)
        self.resolve = resolve
        self.refused = refused  # called with the kind ("s3", "sshfs", "webhook") of each refusal, for metrics

    def check(self, kind: str, host: str, port: int) -> list[AddrInfo]:
        """The addresses of ``host`` davgate may connect to; OutboundRefused if any one is refused."""
        try:
            found = list(self.resolve(host.strip("[]"), port))  # socket.gaierror (an OSError) if there is no such name
        except UnicodeError:
            raise OutboundRefused(host, f"{host!r} is not a usable host name") from None
        for info in found:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            why = self.refusal(host, address, port)
            if why is not None:
                self.count(kind, host, address, port)
                raise OutboundRefused(
                    host, f"{host} resolves to {why}; davgate connects where users point it only at public addresses "
                    f"(the outbound rule) unless the operator allows it in {SETTING}",
                )  # fmt: skip
        if not found:
            raise OutboundRefused(host, f"{host} has no address")
        return found

    def refusal(self, host: str, address: Address, port: int) -> str | None:
        """Why the rule refuses ``address`` (for ``host``:``port``), or None if it may be used."""
        if any(entry.allows(host, address, port) for entry in self.entries):
            return None
        why = category(address)
        if why is None and is_own(address):
            why = "one of this server's own addresses"
        return why

    def count(self, kind: str, host: str, address: Address, port: int) -> None:
        log.warning("outbound rule: %s connection to %s:%d (%s) refused", kind, host, port, address)
        if self.refused is not None:
            self.refused(kind)

    def connect(self, kind: str, host: str, port: int, timeout: float | None) -> socket.socket:
        """A socket connected to ``host``:``port`` at an address the rule allows (checked now)."""
        error: OSError = OutboundRefused(host, f"{host} has no address")
        for family, kind_, proto, _name, sockaddr in self.check(kind, host, port):
            sock = socket.socket(family, kind_, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as failed:
                sock.close()
                error = failed
                continue
            return sock
        raise error

    def opener(self, kind: str) -> Opener:
        """:meth:`connect` for one kind of connection, as a function of ``(host, port, timeout)``."""

        def open_checked(host: str, port: int, timeout: float | None) -> socket.socket:
            return self.connect(kind, host, port, timeout)

        return open_checked
