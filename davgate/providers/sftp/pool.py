"""SSH connections made by fs.sshfs, pooled: keepalive, health checks, reconnection.

A :class:`Link` is one SSH connection (an ``SSHFS`` object) with its main
SFTP channel. paramiko's SFTP client must not serve two threads at once, so
a link's main channel is lent to one request at a time (:meth:`Pool.session`)
for metadata operations. File streams get an SFTP channel of their own on a
link's transport (:meth:`Pool.channel`), which SSH multiplexes, so a long
download holds no link. Links whose transport died (the server restarted,
keepalive failed, an operation timed out) are dropped and replaced on demand;
while the server is down, connecting fails fast (or after ``timeout``) with
:class:`~davgate.errors.Unavailable`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from davgate import errors
from davgate.hardening.outbound import DIRECT, Opener
from davgate.providers.sftp.hostkeys import HostKeyCheck
from davgate.providers.sftp.remote import SSHFS, is_connection_error, paramiko

log = logging.getLogger("davgate.sftp")

KEEPALIVE = 15  # seconds between SSH keepalive messages on idle connections
STREAMS_PER_LINK = 8  # OpenSSH allows 10 sessions (channels) per connection by default
STREAM_WINDOW = 8 * 1024 * 1024  # receive window of a stream's channel: room to pipeline
STREAM_PACKET = 256 * 1024  # largest SSH packet we accept on it (OpenSSH's own limit)


def connect_sshfs(
    host: str,
    port: int,
    user: str,
    check: HostKeyCheck,
    timeout: float,
    *,
    pkey: paramiko.PKey | None = None,
    password: str | None = None,
    opener: Opener = DIRECT,
) -> SSHFS:
    """An ``SSHFS`` logged in with ``pkey`` or ``password``, its host key checked before login.

    We open the socket ourselves, with ``opener`` (the outbound rule's for a
    host an API user chose), so that a failed login or a refused host key
    closes it (fs.sshfs would leave paramiko's transport thread running).
    """
    policy = check.policy()
    sock = opener(host, port, timeout)
    try:
        sshfs = SSHFS(
            host, user=user, passwd=password, pkey=pkey, port=port, timeout=timeout,
            keepalive=KEEPALIVE, config_path=os.devnull, policy=policy, sock=sock,
            look_for_keys=False, allow_agent=False, banner_timeout=timeout, auth_timeout=timeout,
            channel_timeout=timeout, disabled_algorithms=check.disabled_algorithms(),
        )  # fmt: skip
    except BaseException:
        if policy.client is not None:
            policy.client.close()  # stops paramiko's transport thread
        sock.close()
        raise
    try:
        check.verify(transport_of(sshfs).get_remote_server_key())
    except BaseException:
        sshfs.close()
        raise
    return sshfs


def transport_of(sshfs: SSHFS) -> paramiko.Transport:
    return sshfs._client.get_transport()


class Link:
    """One SSH connection: its FS, its main SFTP channel, and how many streams use it."""

    def __init__(self, sshfs: SSHFS, timeout: float) -> None:
        self.fs = sshfs
        self.sftp: paramiko.SFTPClient = sshfs._sftp
        self.sftp.get_channel().settimeout(timeout)
        self.timeout = timeout
        self.streams = 0
        self.uses = 0
        self.broken = False

    def alive(self) -> bool:
        transport = transport_of(self.fs)
        return not self.broken and transport is not None and transport.is_active()

    def open_channel(self) -> paramiko.SFTPClient:
        """A new SFTP channel on this connection, with a window wide enough to pipeline."""
        sftp = paramiko.SFTPClient.from_transport(
            transport_of(self.fs), window_size=STREAM_WINDOW, max_packet_size=STREAM_PACKET
        )
        if sftp is None:
            raise paramiko.SSHException("cannot open an SFTP channel")
        sftp.get_channel().settimeout(self.timeout)
        return sftp

    def close(self) -> None:
        self.broken = True
        with contextlib.suppress(Exception):
            self.fs.close()


class Pool:
    """At most ``size`` links to one server, made by ``connect`` when needed."""

    def __init__(self, connect: Callable[[], SSHFS], size: int, timeout: float, label: str) -> None:
        self.connect = connect
        self.size = max(1, size)
        self.timeout = timeout
        self.label = label
        self.cond = threading.Condition()
        self.idle: list[Link] = []
        self.links: list[Link | _Pending] = []  # every open link, idle or lent
        self.pid = os.getpid()
        self.closed = False

    @contextlib.contextmanager
    def session(self) -> Iterator[Link]:
        """Lend a link's main channel to this thread; a connection error drops the link."""
        link = self.take()
        try:
            yield link
        except BaseException as error:
            if is_connection_error(error):
                link.close()
            raise
        finally:
            self.give(link)

    def stream(self, link: Link) -> tuple[paramiko.SFTPClient, Callable[[], None]]:
        """A new SFTP channel on the lent ``link`` for one file stream, and the function that ends it."""
        sftp = link.open_channel()
        with self.cond:
            link.streams += 1

        def release() -> None:
            with contextlib.suppress(Exception):
                sftp.close()
            with self.cond:
                link.streams -= 1

        return sftp, release

    def take(self) -> Link:
        deadline = time.monotonic() + self.timeout
        with self.cond:
            self.forget_after_fork()
            while True:
                if self.closed:
                    raise errors.Unavailable(self.label, "mount is closed")
                link = self.pick_idle()
                if link is not None:
                    return link
                if len(self.links) < self.size:
                    self.links.append(placeholder := _Pending())
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.Unavailable(self.label, f"all {self.size} SSH connections are busy")
                self.cond.wait(left)
        return self.open_link(placeholder)

    def pick_idle(self) -> Link | None:
        """The idle link with the fewest streams; dead ones are closed on the way."""
        for link in [link for link in self.idle if not link.alive()]:
            self.drop(link)
        if not self.idle:
            return None
        link = min(self.idle, key=lambda candidate: candidate.streams)
        if link.streams >= STREAMS_PER_LINK and len(self.links) < self.size:
            return None  # a new connection serves better than a crowded one
        self.idle.remove(link)
        return link

    def open_link(self, placeholder: _Pending) -> Link:
        try:
            link = Link(self.connect(), self.timeout)
        except BaseException:
            with self.cond:
                self.links.remove(placeholder)
                self.cond.notify()
            raise
        with self.cond:
            self.links[self.links.index(placeholder)] = link
        log.debug("%s: new SSH connection (%d open)", self.label, len(self.links))
        return link

    def give(self, link: Link) -> None:
        with self.cond:
            if link not in self.links:
                return  # from before a fork, or already dropped
            if self.closed or not link.alive():
                self.drop(link)
            else:
                self.idle.append(link)
            self.cond.notify()

    def drop(self, link: Link) -> None:
        """Close and forget ``link``; called with the condition held."""
        link.close()
        if link in self.idle:
            self.idle.remove(link)
        if link in self.links:
            self.links.remove(link)

    def forget_after_fork(self) -> None:
        """A forked worker must not touch its parent's connections: start afresh."""
        if os.getpid() != self.pid:
            self.pid, self.idle, self.links = os.getpid(), [], []

    def close(self) -> None:
        with self.cond:
            self.closed = True
            for link in list(self.idle):
                self.drop(link)
            self.cond.notify_all()


class _Pending:
    """Holds a place in :attr:`Pool.links` while a connection is being made."""

    def alive(self) -> bool:
        return True
