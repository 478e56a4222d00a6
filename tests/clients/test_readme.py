"""The client guide's examples for each kind of user (docs/CLIENTS.md) and the README's first tour, run as written.

Each ``sh`` block of the sections below is run by bash (``set -euo
pipefail``) with only its leading settings changed: the address and the
user of the test's davgate instead of the embedded default's
(``URL=``, ``DAV_USER=``, ``DAV_PASSWORD=``), or a free port (``PORT=``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clients.gateway import PASSWORD, REPO, USER, Gateway

GUIDE = REPO / "docs" / "CLIENTS.md"
README = REPO / "README.md"
TOUR = "A first tour"
SECTIONS = ("Mount it", "Script it", "The token flow", "NextCloud")
DAVFS_CACHE = Path("/var/cache/davfs2")


def section_blocks(title: str, document: Path = GUIDE) -> list[str]:
    """The ``sh`` code blocks of the section ``## title`` of ``document`` (the client guide unless named)."""
    text = document.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.DOTALL | re.MULTILINE)
    assert match, f"{document.relative_to(REPO)} has no section {title!r}"
    return re.findall(r"^```sh\n(.*?)^```", match.group(1), flags=re.DOTALL | re.MULTILINE)


def with_settings(block: str, **values: str) -> str:
    """The block with the settings ``NAME=...`` at the start of a line set to ``values``."""
    for name, value in values.items():
        block, count = re.subn(rf"^{name}=.*$", f"{name}={shlex.quote(value)}", block, count=1, flags=re.MULTILINE)
        assert count == 1, f"the example does not set {name}"
    return block


def run(block: str, cwd: Path, home: Path, timeout: float = 180) -> str:
    """Run the block in its own process group; whatever it leaves running is stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env.update(HOME=str(home), LANG="C.UTF-8")
    process = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + block],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"the example failed ({process.returncode}):\n{block}\n--- output ---\n{text}"
    return text


@pytest.fixture
def home() -> Iterator[Path]:
    """A HOME of its own, reachable by davfs2's unprivileged user (pytest's tmp folders are not)."""
    folder = Path(tempfile.mkdtemp(prefix="davgate-readme-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    mount_point = folder / "davgate"
    if os.path.ismount(mount_point):
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


def settings(gateway: Gateway, slash: str = "") -> dict[str, str]:
    return {"URL": gateway.url + slash, "DAV_USER": USER, "DAV_PASSWORD": PASSWORD}


def test_every_section_has_examples() -> None:
    for title in SECTIONS:
        assert section_blocks(title), f"docs/CLIENTS.md section {title!r} has no sh example"
    assert len(section_blocks(TOUR, README)) == 2, "the README's first tour has two sh examples"


def test_mount_it(gateway: Gateway, home: Path, tool: Callable[[str], str]) -> None:
    tool("mount.davfs")
    (block,) = section_blocks("Mount it")
    before = set(DAVFS_CACHE.iterdir()) if DAVFS_CACHE.exists() else set()
    try:
        output = run(with_settings(block, **settings(gateway, "/")), home, home)
    finally:
        for leftover in (set(DAVFS_CACHE.iterdir()) if DAVFS_CACHE.exists() else set()) - before:
            shutil.rmtree(leftover, ignore_errors=True)  # the cache of this mount only
    assert {"data", "demo", "dispel"} <= set(output.split())
    assert "0-1024-0-512.png" in output
    assert gateway.http("GET", "/data/run1.txt").content == b"results of run 1\n"
    gateway.http("DELETE", "/data/run1.txt")


def test_script_it(gateway: Gateway, home: Path, tool: Callable[[str], str]) -> None:
    for program in ("cadaver", "rclone", "curl"):
        tool(program)
    (block,) = section_blocks("Script it")
    output = run(with_settings(block, **settings(gateway)), home, home)
    assert re.search(r"(?im)^Digest: sha-256=\S+", output), output
    assert "Value of run is: 2" in output and "failed" not in output, output
    assert (home / "from-cadaver.csv").read_text() == "x,y\n1,2\n"
    assert "0 differences found" in output, output
    assert not gateway.exists("/data/run2/")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_token_flow(home: Path, tool: Callable[[str], str]) -> None:
    for program in ("curl", "openssl"):
        tool(program)
    (block,) = section_blocks("The token flow")
    (home / ".venv").symlink_to(REPO / ".venv")
    output = run(with_settings(block, PORT=str(free_port())), home, home)
    assert re.search(r"(?im)^Digest: sha-256=\S+", output), output
    assert re.search(r"(?m)^\s*1024$", output), output
    assert (home / "var/tokens/back.bin").read_bytes() == (home / "var/tokens/result.bin").read_bytes()


def test_nextcloud(gateway: Gateway, home: Path, tool: Callable[[str], str]) -> None:
    tool("curl")
    (block,) = section_blocks("NextCloud")
    output = run(with_settings(block, **settings(gateway)), home, home)
    assert "HTTP/1.1 200 OK" in output and "RGDNVW" in output and "RGCK" in output, output
    assert "Fri, 14 Jul 2017 02:40:00 GMT" in output, output
    gateway.http("DELETE", "/data/nc.txt")


def test_the_first_tour_of_the_embedded_default(gateway: Gateway, home: Path, tool: Callable[[str], str]) -> None:
    for program in ("curl", "rclone", "fusermount3"):
        tool(program)
    first, _ = section_blocks(TOUR, README)
    output = run(with_settings(first, **settings(gateway)), home, home)
    assert gateway.http("GET", "/data/notes.txt").content == b"my first file\n"
    assert (home / "window.png").read_bytes().startswith(b"\x89PNG\r\n"), output
    assert '"mean"' in output and "notes.txt" in output.split() and "12" in output.split(), output
    assert not os.path.ismount(home / "davgate")
    gateway.http("DELETE", "/data/notes.txt")


def test_the_first_tour_of_tokens_and_the_api(home: Path, tool: Callable[[str], str]) -> None:
    for program in ("curl", "python3"):
        tool(program)
    _, second = section_blocks(TOUR, README)
    (home / ".venv").symlink_to(REPO / ".venv")
    output = run(with_settings(second, PORT=str(free_port())), home, home)
    assert re.search(r"(?im)^Digest: sha-256=\S+", output), output
    assert (home / "var/tour/data/users.json").read_bytes() == (home / "var/tour/users.json").read_bytes()
    answers = [json.loads(line) for line in output.splitlines() if line.startswith("[")]
    assert answers == [[{"type": "token", "header": "x-access-token"}]], output  # the API's own only: no spaces yet
