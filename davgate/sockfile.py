"""cheroot's socket files, without its copies: what large bodies go through.

cheroot reads and writes its sockets through ``_pyio``, the pure-Python io
module: a 1 MiB request-body read allocates, copies and joins each piece
several times in Python, and every response write copies the chunk into a
bytearray and again into ``bytes`` before it is sent. On a 1 GiB PUT that
was most of the CPU. These replacements keep cheroot's interface
(``read``, ``readline``, ``has_data``, ``bytes_read``; ``write``,
``bytes_written``) over C-implemented buffering:

- :class:`SocketReader` is a C ``io.BufferedReader``: a large read goes
  straight from the socket into the bytes object it returns.
- :class:`SocketWriter` sends each chunk from a memoryview, in as many
  ``send`` calls as the socket takes; nothing is copied in Python, and the
  socket's timeout still applies to each ``send`` (to progress, not to the
  whole chunk), as with cheroot's writer.

Only plain-HTTP connections use them; TLS keeps its adapter's files. Every
connection reads its requests with :class:`Request`, which answers oversized
header fields with 431.
"""

from __future__ import annotations

import io
import socket
import threading
from typing import Any

from cheroot import errors, makefile, server


class CountingSocketIO(socket.SocketIO):
    """The raw socket, counting the bytes received (so the reader knows what it holds)."""

    received = 0

    def readinto(self, b: Any) -> int | None:
        n = super().readinto(b)
        if n:
            self.received += n
        return n


class SocketReader(io.BufferedReader):
    """A C buffered reader of a socket, with what cheroot asks of its ``rfile``."""

    raw: CountingSocketIO

    def __init__(self, sock: socket.socket, mode: str = "rb", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> None:
        super().__init__(CountingSocketIO(sock, "rb"), bufsize)
        self.bytes_read = 0  # handed out to cheroot

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.bytes_read += len(line)
        return line

    def has_data(self) -> bool:
        """Bytes received but not yet handed out: a pipelined request waits here, not in the kernel."""
        return self.raw.received > self.bytes_read


class SocketWriter(makefile.StreamWriter):
    """cheroot's writer, sending from a memoryview instead of copying each chunk twice.

    Nothing is ever buffered: each write returns once the socket took it all.
    """

    def __init__(self, sock: socket.socket, mode: str = "wb", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> None:
        super().__init__(sock, mode, bufsize)
        self.send_lock = threading.Lock()

    def write(self, val: Any, *args: Any, **kwargs: Any) -> int:  # type: ignore[override]  # cheroot's own stubs disagree
        self._checkClosed()
        if isinstance(val, str):
            raise TypeError("can't write str to binary stream")
        view = memoryview(val).cast("B")
        size = view.nbytes
        with self.send_lock:
            while view:
                sent = self.raw.write(view)  # None only on a non-blocking socket, which cheroot never uses
                view = view[sent or 0 :]
        self.bytes_written += size
        return size


def socket_file(sock: socket.socket, mode: str = "r", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> Any:
    """cheroot's ``MakeFile``, with the readers and writers above."""
    return SocketReader(sock, mode, bufsize) if "r" in mode else SocketWriter(sock, mode, bufsize)


class Request(server.HTTPRequest):
    """cheroot's request, with 431 for oversized header fields (RFC 6585) where cheroot says 413."""

    def read_request_headers(self) -> bool:
        try:
            return super().read_request_headers()
        except errors.MaxSizeExceeded:
            self.close_connection = True  # the rest of the headers is never read
            self.simple_response(
                "431 Request Header Fields Too Large", "The request's header fields exceed server.max_header_bytes."
            )
            return False


class Connection(server.HTTPConnection):
    """A cheroot connection whose plain sockets get :func:`socket_file` files."""

    RequestHandlerClass = Request

    def __init__(self, srv: server.HTTPServer, sock: socket.socket, makefile_: Any = makefile.MakeFile) -> None:
        super().__init__(srv, sock, socket_file if makefile_ is makefile.MakeFile else makefile_)
