"""davgate.sockfile: cheroot's socket files without the copies, same behaviour."""

from __future__ import annotations

import os
import socket
import threading

from davgate.sockfile import SocketReader, SocketWriter

MiB = 1024 * 1024


def test_a_large_write_arrives_whole_through_partial_sends() -> None:
    """A chunk bigger than the socket buffers goes out in several sends, in order, nothing lost."""
    left, right = socket.socketpair()
    left.settimeout(10)  # as cheroot sets it: each send may send only part of the chunk
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    data = os.urandom(8 * MiB)
    received = bytearray()

    def drain() -> None:
        while chunk := right.recv(256 * 1024):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    writer = SocketWriter(left, "wb")
    assert writer.write(memoryview(data)[: 3 * MiB]) == 3 * MiB
    assert writer.write(data[3 * MiB :]) == 5 * MiB
    assert writer.bytes_written == 8 * MiB
    left.shutdown(socket.SHUT_WR)
    reader.join()
    writer.close()
    left.close()
    right.close()
    assert bytes(received) == data


def test_the_reader_knows_when_it_holds_the_next_request() -> None:
    left, right = socket.socketpair()
    right.sendall(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
    reader = SocketReader(left, "rb")
    assert not reader.has_data()  # nothing received yet (the kernel's data is the selector's business)
    assert reader.readline() == b"GET /a HTTP/1.1\r\n"
    assert reader.readline() == b"\r\n"
    assert reader.has_data()  # the second request already sits in the buffer
    assert reader.read(19) == b"GET /b HTTP/1.1\r\n\r\n"
    assert not reader.has_data()
    assert reader.bytes_read == 38
    reader.close()
    left.close()
    right.close()


def test_a_large_read_returns_exactly_what_was_asked() -> None:
    left, right = socket.socketpair()
    data = os.urandom(3 * MiB)
    sender = threading.Thread(target=right.sendall, args=(data,))
    sender.start()
    reader = SocketReader(left, "rb")
    assert reader.read(10) == data[:10]
    assert reader.read(2 * MiB) == data[10 : 10 + 2 * MiB]
    assert reader.read(MiB - 10) == data[10 + 2 * MiB :]
    sender.join()
    reader.close()
    left.close()
    right.close()
