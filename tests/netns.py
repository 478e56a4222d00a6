"""Several hosts on one machine, for the multi-host tests: network namespaces on one bridge.

Each host is a network namespace (``ip netns``) of its own, with loopback
and one end of a veth pair; the other ends hang on a bridge in the test's
own namespace, which has an address on the same private /24 and so reaches
every host, as they reach each other. A program runs on a host by
``ip netns exec``; the file system stays shared (the hosts are network
apart, not disk apart). Names carry a random tag, and the subnet is one no
interface of the machine uses, so tests running at once do not meet.
Everything is removed at the end (root only: ``ip`` needs CAP_NET_ADMIN).
"""

from __future__ import annotations

import random
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

SUBNET = "10.213.{}.{}"  # the third byte is picked per network


@dataclass(frozen=True)
class Host:
    """A network namespace with one address."""

    namespace: str
    address: str

    def command(self, *args: str) -> list[str]:
        """``args`` run on this host."""
        return ["ip", "netns", "exec", self.namespace, *args]


@dataclass
class Network:
    """Hosts on one bridge; ``gateway`` is the address of the test's own namespace on it."""

    tag: str
    gateway: str = ""
    hosts: dict[str, Host] = field(default_factory=dict)
    _bridge: str = ""
    _namespaces: list[str] = field(default_factory=list)

    def start(self, names: Sequence[str]) -> None:
        third = free_subnet()
        self._bridge = f"dg{self.tag}br"
        self.gateway = SUBNET.format(third, 1)
        ip("link", "add", self._bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self._bridge)
        ip("link", "set", self._bridge, "up")
        for number, name in enumerate(names):
            self.hosts[name] = self._add_host(number, SUBNET.format(third, number + 2))

    def _add_host(self, number: int, address: str) -> Host:
        namespace, outside, inside = f"dg{self.tag}n{number}", f"dg{self.tag}v{number}", f"dg{self.tag}h{number}"
        ip("netns", "add", namespace)
        self._namespaces.append(namespace)
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", namespace)
        ip("link", "set", outside, "master", self._bridge)
        ip("link", "set", outside, "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
        ip("-n", namespace, "link", "set", inside, "up")
        return Host(namespace, address)

    def stop(self) -> None:
        """Remove the namespaces (their veth pairs go with them) and the bridge."""
        for namespace in self._namespaces:
            ip("netns", "del", namespace, check=False)
        if self._bridge:
            ip("link", "del", self._bridge, check=False)


def ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")


def free_subnet() -> int:
    """A third byte for :data:`SUBNET` that no address of the machine has."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    choices = [n for n in range(256) if SUBNET.format(n, "") not in used]
    assert choices, "every 10.213.x.0/24 is in use"
    return random.choice(choices)


@contextmanager
def network(names: Sequence[str]) -> Iterator[Network]:
    """Hosts named ``names`` on one bridge; all removed at the end."""
    built = Network(secrets.token_hex(3))
    try:
        built.start(names)
        yield built
    finally:
        built.stop()
