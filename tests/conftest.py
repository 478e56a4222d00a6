"""Shared fixtures: real davgate servers on ephemeral ports, htpasswd files."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import USERS, ServerLauncher, write_htpasswd

__all__ = ["USERS"]


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """A test that runs davgate's CLI in-process configures root logging onto
    pytest's captured stderr, which closes after the test: put it back."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerLauncher]:
    """Start davgate: ``serve(config, *, workers=1, extra_args=()) -> Server``.

    The config is a dict as in the YAML file, with absolute paths. Every
    server is stopped with SIGTERM at teardown and must exit with 0.
    """
    launcher = ServerLauncher(tmp_path / "servers")
    yield launcher
    launcher.stop_all()


@pytest.fixture
def htpasswd_file(tmp_path: Path) -> Path:
    """An htpasswd file with the users in ``USERS`` (alice, bob)."""
    return write_htpasswd(tmp_path / "htpasswd")


# Real faults every test may use: a port that refuses, one that never answers.


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


from tests.rgw import rgw  # noqa: E402,F401 - the session's Ceph RGW, for the s3 tests
