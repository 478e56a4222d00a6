"""Whose SSH host key we accept: a known_hosts file, or the key pinned on first use.

With ``known_hosts`` configured, the server must present a key listed there
for the host (``host`` on port 22, ``[host]:port`` otherwise, hashed names
included). Without it the first key seen is trusted, logged with its
fingerprint and pinned in the state store, and every later connection, from
any davgate process sharing that store, must present the same key. A mount
with neither (tests, tools) pins in memory for the life of the process.

The check runs before authentication (paramiko's missing-host-key policy),
so no password or key signature goes to an unverified server, and once more
on the finished connection, because paramiko consults the process user's
``~/.ssh/known_hosts`` first and skips the policy for hosts listed there.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from davgate.providers.sftp.remote import HostKeyRejected, paramiko
from davgate.state import StateStore

log = logging.getLogger("davgate.sftp")

# Host key algorithms that prove possession of a key of each known_hosts type.
ALGORITHMS = {"ssh-rsa": {"ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"}}

_MEMORY: dict[tuple[str, int], tuple[str, str]] = {}
_MEMORY_LOCK = threading.Lock()


def fingerprint(key_type: str, key_b64: str) -> str:
    """``ssh-ed25519 SHA256:...``, as ssh-keygen -l shows it."""
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return f"{key_type} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


@dataclass
class HostKeyCheck:
    """Accepts or refuses the host key of ``host``:``port``; ``label`` names the mount in logs."""

    host: str
    port: int
    known_hosts: Path | None = None
    store: StateStore | None = None
    label: str = "sftp"
    _reported: set[str] = field(default_factory=set)

    def expected(self) -> dict[str, str] | None:
        """Known keys by type (base64), or None if the first key seen is to be trusted."""
        if self.known_hosts is not None:
            keys = paramiko.HostKeys(str(self.known_hosts)).lookup(known_hosts_name(self.host, self.port))
            return {key_type: key.get_base64() for key_type, key in (keys or {}).items()}
        if self.store is not None:
            pinned = self.store.get_host_key(self.host, self.port)
            return {pinned.key_type: pinned.key_b64} if pinned else None
        with _MEMORY_LOCK:
            found = _MEMORY.get((self.host, self.port))
        return dict([found]) if found else None

    def disabled_algorithms(self) -> dict[str, list[str]]:
        """Make paramiko negotiate a key type we know, so a host with several keys shows that one."""
        expected = self.expected()
        if not expected:
            return {}
        allowed = set().union(*(ALGORITHMS.get(key_type, {key_type}) for key_type in expected))
        return {"keys": [name for name in paramiko.Transport._preferred_keys if name not in allowed]}

    def verify(self, key: paramiko.PKey) -> None:
        """Accept ``key`` (pinning it if it is the first), or raise :class:`HostKeyRejected`."""
        key_type, key_b64 = key.get_name(), key.get_base64()
        expected = self.expected()
        if expected is None:
            expected = self.trust_first(key_type, key_b64)
        if expected.get(key_type) != key_b64:
            self.refuse(key_type, key_b64, expected)

    def trust_first(self, key_type: str, key_b64: str) -> dict[str, str]:
        where = "the state store" if self.store is not None else "memory (no state store)"
        if self.store is not None:
            pinned = self.store.pin_host_key(self.host, self.port, key_type, key_b64)
            winner = self.store.get_host_key(self.host, self.port)
            current = {winner.key_type: winner.key_b64} if winner else {}
        else:
            with _MEMORY_LOCK:
                pinned = (self.host, self.port) not in _MEMORY
                _MEMORY.setdefault((self.host, self.port), (key_type, key_b64))
                current = dict([_MEMORY[(self.host, self.port)]])
        if pinned:
            log.warning(
                "%s: first connection to %s:%d: trusting its host key %s and pinning it in %s",
                self.label, self.host, self.port, fingerprint(key_type, key_b64), where,
            )  # fmt: skip
        return current

    def refuse(self, key_type: str, key_b64: str, expected: dict[str, str]) -> None:
        got = fingerprint(key_type, key_b64)
        source = f"known_hosts file {self.known_hosts}" if self.known_hosts else "the key pinned on first use"
        if not expected:
            problem = f"{self.host}:{self.port} is not listed in {source}"
        else:
            wanted = ", ".join(fingerprint(t, b) for t, b in expected.items())
            problem = f"host key of {self.host}:{self.port} changed: expected {wanted} ({source}), got {got}"
        if got not in self._reported:
            self._reported.add(got)
            advice = "add the new key to a known_hosts file and name it in the mount's known_hosts"
            log.error("%s: %s; refusing to connect (if the change is expected, %s)", self.label, problem, advice)
        raise HostKeyRejected(self.label, problem)

    def policy(self) -> Policy:
        return Policy(self)


class Policy(paramiko.MissingHostKeyPolicy):
    """paramiko calls this before authenticating, for hosts not in ~/.ssh/known_hosts.

    It keeps the client, so a failed connection can be closed cleanly.
    """

    def __init__(self, check: HostKeyCheck) -> None:
        self.check = check
        self.client: paramiko.SSHClient | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.client = client
        self.check.verify(key)
