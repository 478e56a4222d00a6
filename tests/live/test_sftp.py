"""A real davgate serving an sftp mount on the tests' real sshd.

litmus (all five suites, 104/104, none skipped) against the mount; large
streamed transfers and Range over HTTP; the sshd stopped and started under
a running davgate; and enrolment end to end through the command line.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import USERS, Server, ServerLauncher, write_htpasswd
from tests.live.test_litmus import SUITES, run_litmus
from tests.sshd import LocalUser, Sshd, local_user, sshd, start_sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

AUTH = ("alice", USERS["alice"])
MiB = 1024 * 1024


def sftp_section(server: Sshd, root: Path, **extra: object) -> dict:
    section = {"type": "sftp", "host": server.host, "port": server.port, "user": server.user, "key": server.key}
    section.update(root=str(root), timeout=3.0)
    section.update(extra)
    return section


def config_for(base: Path, hpc: dict) -> dict:
    return {
        "mounts": {"/hpc": hpc},
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd"), "anonymous": "none"},
        "state": {"type": "sqlite", "path": base / "state.db"},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd) -> Iterator[tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("sftp-live")
    remote = base / "remote"
    remote.mkdir()
    launcher = ServerLauncher(base / "servers")
    yield launcher(config_for(base, sftp_section(sshd, remote, known_hosts=sshd.known_hosts))), remote
    launcher.stop_all()


@pytest.mark.parametrize("suite", SUITES)
def test_litmus_suite(suite: str, server: tuple[Server, Path], tmp_path: Path) -> None:
    davgate, _remote = server
    result = run_litmus(suite, f"{davgate.url}/hpc/", tmp_path)
    expected = SUITES[suite]
    report = (
        f"litmus {suite} on sftp: {result.run} run, {result.passed} passed, {result.failed} failed, "
        f"{result.skipped} skipped, {result.warnings} warnings (expected {expected} of {expected})\n"
        + "\n".join(result.problems)
        + f"\n--- litmus output ---\n{result.output}\n--- davgate log ---\n"
        + "\n".join(davgate.log_text().splitlines()[-40:])
    )
    assert result.returncode == 0, report
    assert not result.problems, report
    assert (result.run, result.passed, result.failed) == (expected, expected, 0), report


def test_large_files_stream_both_ways_with_range(server: tuple[Server, Path]) -> None:
    davgate, remote = server
    data = os.urandom(64 * MiB)
    put = requests.put(f"{davgate.url}/hpc/large.bin", data=data, auth=AUTH, timeout=120)
    assert put.status_code == 201, put.text
    assert hashlib.sha256((remote / "large.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    with requests.get(f"{davgate.url}/hpc/large.bin", auth=AUTH, stream=True, timeout=120) as got:
        digest = hashlib.sha256()
        for chunk in got.iter_content(MiB):
            digest.update(chunk)
    assert got.status_code == 200 and digest.digest() == hashlib.sha256(data).digest()
    part = requests.get(f"{davgate.url}/hpc/large.bin", auth=AUTH, headers={"Range": "bytes=50000000-50000999"})
    assert part.status_code == 206 and part.content == data[50000000:50001000]
    assert requests.delete(f"{davgate.url}/hpc/large.bin", auth=AUTH).status_code == 204


def test_sshd_stopped_and_started_under_a_running_davgate(serve: ServerLauncher, tmp_path: Path) -> None:
    own = start_sshd(tmp_path / "own-sshd")
    try:
        remote = tmp_path / "remote"
        remote.mkdir()
        davgate = serve(config_for(tmp_path, sftp_section(own, remote, known_hosts=own.known_hosts)))
        url = f"{davgate.url}/hpc/file.txt"
        assert requests.put(url, data=b"before", auth=AUTH).status_code == 201
        own.stop()
        for _ in range(3):
            started = time.monotonic()
            down = requests.get(url, auth=AUTH, timeout=30)
            assert down.status_code == 503 and time.monotonic() - started < 2.0, down.text
        own.start()
        assert requests.get(url, auth=AUTH).content == b"before"
        assert requests.put(url, data=b"after", auth=AUTH).status_code == 204
        assert (remote / "file.txt").read_bytes() == b"after"
    finally:
        own.stop()


def test_enrolment_from_the_command_line_then_key_only_login(
    serve: ServerLauncher, sshd: Sshd, local_user: LocalUser, tmp_path: Path
) -> None:
    key = tmp_path / "conf" / "id_ed25519"
    state = {"type": "sqlite", "path": str(tmp_path / "state.db")}
    (tmp_path / "enroll.yaml").write_text(f"state: {{type: sqlite, path: {state['path']}}}\n")
    command = [
        sys.executable, "-m", "davgate", "--log-level", "DEBUG", "sftp-enroll", "--host", sshd.host,
        "--port", str(sshd.port), "--user", local_user.name, "--key-out", str(key), "--password-stdin",
        "--config", str(tmp_path / "enroll.yaml"),
    ]  # fmt: skip
    done = subprocess.run(
        command, input=local_user.password + "\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert local_user.password not in done.stdout + done.stderr
    assert "authorised for" in done.stdout and "SHA256:" in done.stdout and key.exists()

    folder = local_user.home / "data"
    folder.mkdir(exist_ok=True)
    home = local_user.home.stat()
    os.chown(folder, home.st_uid, home.st_gid)
    hpc = {"type": "sftp", "host": sshd.host, "port": sshd.port, "user": local_user.name, "key": key, "root": "data"}
    davgate = serve({**config_for(tmp_path, hpc), "state": state})  # the pin made at enrolment is used
    assert requests.put(f"{davgate.url}/hpc/x.txt", data=b"by key", auth=AUTH).status_code == 201
    assert (folder / "x.txt").read_bytes() == b"by key"
    assert local_user.password not in davgate.log_text()
    again = subprocess.run(command, input="wrong\n", capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 1 and "refused" in again.stderr and "wrong" not in again.stdout + again.stderr
