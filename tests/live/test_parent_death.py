"""Every process ``davgate serve`` starts ends with it, even when it is killed with SIGKILL.

A parent killed that way runs no handler: its workers and their DISPEL
pipeline processes must end by themselves (davgate.lifeline), so that a
restart on the same port binds and serves at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.dispel.conftest import TIFFSTORE, stack, write_stack
from tests.helpers import USERS, ServerLauncher, group_members, wait_until

AUTH = ("alice", USERS["alice"])
WINDOW = "/dispel/tiffstore/312/20181129/1/0-10-0-10"


def config(tmp_path: Path, htpasswd: Path, engine: str) -> dict:
    source, templates = tmp_path / "source", tmp_path / "templates"
    write_stack(source / "tiffstore/312/20181129.tif", stack(1, 3, 200, 300), tile=(64, 64))
    templates.mkdir()
    (templates / "tiffstore.yaml").write_text(TIFFSTORE.read_text())
    return {
        "server": {"engine": engine},
        "auth": {"htpasswd": htpasswd},
        "mounts": {
            "/source": {"type": "local", "root": source, "readonly": True},
            "/dispel": {"type": "dispel", "templates": templates, "source": "/source"},
        },
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
        "cache": {"type": "local", "root": tmp_path / "cache"},
    }


def pipeline_processes(pids: list[int]) -> list[int]:
    def command(pid: int) -> bytes:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return b""

    return [pid for pid in pids if b"davgate.dispel.worker" in command(pid)]


@pytest.mark.parametrize("engine", ["cheroot", "granian"])
def test_kill_9_of_the_parent_leaves_no_process_and_a_restart_serves_on_its_port(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, engine: str
) -> None:
    settings = config(tmp_path, htpasswd_file, engine)
    server = serve(settings, workers=2)
    assert requests.get(server.url + WINDOW, auth=AUTH, timeout=60).status_code == 200
    group = server.process.pid
    assert pipeline_processes(group_members(group)), "the DISPEL request started no pipeline process"
    assert len(group_members(group)) >= 4  # the parent, two workers, a pipeline process

    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    serve.servers.remove(server)  # it did not exit with 0, as intended
    try:
        wait_until(lambda: not group_members(group), timeout=10, message=lambda: f"left behind: {group_members(group)}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # whatever a failure left behind

    port = urlsplit(server.url).port
    again = serve(settings, workers=2, extra_args=("--port", str(port)))
    assert again.url == server.url
    assert requests.get(again.url + WINDOW, auth=AUTH, timeout=60).status_code == 200
