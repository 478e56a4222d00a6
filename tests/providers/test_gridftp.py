"""The gridftp provider against a real globus-gridftp-server: the shared contract, then GridFTP's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from davgate.config.schema import GridftpMountOptions
from davgate.providers import Mount
from davgate.providers.gridftp import GridftpMount
from tests.gridftp import GridftpServer, gridftp
from tests.providers.contract import MountContract

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
