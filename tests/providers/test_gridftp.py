"""The gridftp provider against a real globus-gridftp-server: the shared contract, then GridFTP's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from davgate import errors
from davgate.config.schema import GridftpMountOptions
from davgate.providers import Mount
from davgate.providers.gridftp import GridftpMount
from tests.gridftp import GridftpServer, gridftp, remove, start_gridftp
from tests.providers.contract import CONTENT, MountContract, put, read

__all__ = ["gridftp"]  # session fixture, shared through this import


def options(server: GridftpServer, root: Path, **extra: object) -> GridftpMountOptions:
    return GridftpMountOptions(type="gridftp", url=server.url(root), **{"timeout": 5.0, **extra})


def gridftp_mount(server: GridftpServer, root: Path, **extra: object) -> GridftpMount:
    return GridftpMount("/grid", options(server, root, **extra))


class TestGridftpMount(MountContract):
    @pytest.fixture(autouse=True)
    def server(self, gridftp: GridftpServer) -> None:
        self.gridftp = gridftp

    def make_mount(self, tmp_path: Path) -> Mount:
        return gridftp_mount(self.gridftp, self.gridftp.new_root())


# -- GridFTP's own -------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[GridftpServer]:
    """A server for this test alone, which it may stop and start again."""
    server = start_gridftp()
    try:
        yield server
    finally:
        remove(server)


def test_a_server_that_is_down_is_unavailable_then_recovers(own_server: GridftpServer) -> None:
    mount = gridftp_mount(own_server, own_server.new_root())
    put(mount, "file.txt", CONTENT)
    own_server.stop()
    with pytest.raises(errors.Unavailable):
        mount.stat("file.txt")
    own_server.start()
    assert read(mount, "file.txt") == CONTENT


def test_names_beyond_ascii_and_line_breaks_are_refused_and_change_nothing(gridftp: GridftpServer) -> None:
    root = gridftp.new_root()
    mount = gridftp_mount(gridftp, root)
    for name in ("Grüße.txt", "a\r\nDELE b", "日本語.txt"):
        with pytest.raises(errors.Forbidden):
            put(mount, name, CONTENT)
    assert list(root.iterdir()) == []


def test_a_range_reads_only_its_bytes(gridftp: GridftpServer) -> None:
    mount = gridftp_mount(gridftp, gridftp.new_root())
    data = bytes(range(256)) * 4096
    put(mount, "big.bin", data)
    with mount.open_read("big.bin") as stream:
        stream.seek(len(data) - 10)
        assert stream.read(100) == data[-10:]
