"""Work done in a forked child (the mounts' recovery at start): its failure is raised in the parent as itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from davgate.config import ConfigError
from davgate.forked import ChildFailed, run_in_child


def write_pid(path: Path) -> None:
    path.write_text(str(os.getpid()))


def refuse_bucket() -> None:
    raise ConfigError("mounts./s3.bucket", "bucket 'nope' does not exist", "conf/davgate.yaml")


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("not today")


def raise_unpicklable() -> None:
    raise Unpicklable("a socket in its arguments")


def test_the_work_runs_in_another_process(tmp_path: Path) -> None:
    run_in_child(write_pid, tmp_path / "pid")
    assert int((tmp_path / "pid").read_text()) != os.getpid()


def test_a_configuration_error_comes_back_whole() -> None:
    with pytest.raises(ConfigError) as raised:
        run_in_child(refuse_bucket)
    assert (raised.value.key, raised.value.source) == ("mounts./s3.bucket", "conf/davgate.yaml")
    assert str(raised.value) == "mounts./s3.bucket: bucket 'nope' does not exist (conf/davgate.yaml)"


def test_an_os_error_keeps_its_errno() -> None:
    with pytest.raises(FileNotFoundError):
        run_in_child(os.stat, "/nonexistent/davgate")


def test_an_exception_that_cannot_travel_arrives_as_text() -> None:
    with pytest.raises(ChildFailed, match="Unpicklable: a socket in its arguments"):
        run_in_child(raise_unpicklable)
