"""Fixtures for the real-client acceptance tests (davfs2, cadaver, rclone, sabre/dav, Chromium, ...).

A missing client is a failure, never a skip: ``scripts/setup.sh --test``
installs them all.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.clients.gateway import Gateway, start_gateway
from tests.rgw import Rgw
from tests.sshd import Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd, rgw: Rgw) -> Iterator[Gateway]:
    """The session's davgate with /data, /sftp, /s3, /ro, /demo and /dispel."""
    yield from start_gateway(tmp_path_factory.mktemp("clients"), sshd, rgw)


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    """``tool(name)``: the path of a client program; fails the test if it is not installed."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.fail(f"{name} is not installed: run bash scripts/setup.sh --test")
        return path

    return find
