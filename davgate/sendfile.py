"""GET bodies of local files sent by the kernel (``sendfile``) on cheroot's plain-HTTP connections.

WsgiDAV's GET reads the file block by block into Python and yields each
block for cheroot to write: every byte is copied into the process and out
again. Here the gateway offers, in the request's environ (:data:`OFFER`),
to send an open file itself; a local file's resource takes the offer for the
body of a GET (:func:`offered`). WsgiDAV's read loop then reads nothing
(:class:`Handoff`), and once the response's headers are out the gateway
sends the ``Content-Length`` bytes from the file's position with
``socket.sendfile`` -- Range requests included, since WsgiDAV seeks the file
to the range's start first.

The offer is made only where the kernel can send: plain HTTP on cheroot
(:mod:`davgate.sockfile`'s writer), not TLS, not granian, not the
in-process test client; without it everything reads as before. Bytes sent
this way are counted in ``environ[SENT]`` for the access log and metrics.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from cheroot import wsgi

from davgate import sockfile

log = logging.getLogger("davgate.sendfile")

OFFER = "davgate.sendfile.offer"  # environ: callable(file), present only where the server can sendfile
SENT = "davgate.sendfile.sent"  # environ: body bytes the server sent from a file, past the WSGI iterable
FALLBACK_BLOCK = 1024 * 1024  # a response without a length: the file goes through cheroot's writes


def offered(stream: BinaryIO, environ: dict) -> BinaryIO:
    """``stream`` as WsgiDAV's GET should read it: handed to the server where it offers to send files."""
    take = environ.get(OFFER)
    if take is None or environ.get("REQUEST_METHOD") != "GET" or not is_os_file(stream):
        return stream
    return Handoff(stream, take)


def is_os_file(stream: BinaryIO) -> bool:
    return isinstance(stream, io.BufferedReader) and isinstance(stream.raw, io.FileIO)


@contextmanager
def declined(environ: dict) -> Iterator[None]:
    """Read content in full while this lasts (a digest of the body), even in a GET whose server offers."""
    take = environ.pop(OFFER, None)
    try:
        yield
    finally:
        if take is not None:
            environ[OFFER] = take


class Handoff:
    """The file WsgiDAV reads a GET body from: its first read gives the file to the server and returns nothing."""

    def __init__(self, file: io.BufferedReader, take: Callable[[io.BufferedReader], None]) -> None:
        self.file: io.BufferedReader | None = file
        self.take = take

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        assert self.file is not None, "seek after the file went to the server"
        return self.file.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        if self.file is not None:
            self.take(self.file)  # the server closes it
            self.file = None
        return b""

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class SendfileGateway(wsgi.Gateway_10):
    """cheroot's WSGI gateway, sending a file taken through :data:`OFFER` after the response's chunks."""

    def __init__(self, req: Any) -> None:
        self.taken: io.BufferedReader | None = None
        super().__init__(req)

    def get_environ(self) -> dict:
        environ = super().get_environ()
        if isinstance(self.req.conn.wfile, sockfile.SocketWriter):  # plain HTTP: the socket is the kernel's
            environ[OFFER] = self.take
        return environ

    def take(self, file: io.BufferedReader) -> None:
        self.taken = file

    def respond(self) -> None:
        """cheroot's own, plus the taken file before the response is closed (and the request logged)."""
        response = self.req.server.wsgi_app(self.env, self.start_response)
        try:
            for chunk in filter(None, response):
                if not isinstance(chunk, bytes):
                    raise TypeError("WSGI Applications must yield bytes")
                self.write(chunk)
            if self.taken is not None:
                self.send_taken(self.taken)
        finally:
            if self.taken is not None:
                self.taken.close()
            self.req.ensure_headers_sent()
            if hasattr(response, "close"):
                response.close()

    def send_taken(self, file: io.BufferedReader) -> None:
        count = self.remaining_bytes_out
        if count is None or self.req.chunked_write:
            while block := file.read(FALLBACK_BLOCK):
                self.write(block)
            return
        self.req.ensure_headers_sent()
        writer = self.req.conn.wfile
        with writer.send_lock:
            sent = self.req.conn.socket.sendfile(file, file.tell(), count) if count else 0
        writer.bytes_written += sent
        self.remaining_bytes_out = count - sent
        self.env[SENT] = sent
        if sent < count:  # the file shrank under us: the client must not wait for the rest
            self.req.close_connection = True
            log.warning(
                "%s: the file ended %d bytes short of its Content-Length", self.env.get("PATH_INFO"), count - sent
            )
