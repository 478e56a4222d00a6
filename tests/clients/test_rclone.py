"""rclone (Debian's 1.60, WebDAV backend, vendor "other"): copy, check --download, and mount.

rclone is configured by environment variables only (no config file). With
vendor "other" it has no hashes, so ``check --download`` compares every byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.clients.gateway import PASSWORD, USER, WRITABLE, Gateway
from tests.helpers import wait_until

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def rclone(gateway: Gateway, tool: Callable[[str], str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``rclone(*args, check=True)``: rclone with the remote ``dav:`` pointing at the gateway's root."""
    program = tool("rclone")
    obscured = subprocess.run([program, "obscure", PASSWORD], capture_output=True, text=True, check=True).stdout.strip()
    env = {
        **os.environ,
        "RCLONE_CONFIG": "/dev/null",
        "RCLONE_CONFIG_DAV_TYPE": "webdav",
        "RCLONE_CONFIG_DAV_URL": gateway.url + "/",
        "RCLONE_CONFIG_DAV_VENDOR": "other",
        "RCLONE_CONFIG_DAV_USER": USER,
        "RCLONE_CONFIG_DAV_PASS": obscured,
    }

    def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([program, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert done.returncode == 0, (
                f"rclone {' '.join(args)}: {done.returncode}\n{done.stderr}\n{gateway.log_tail()}"
            )
        return done

    run.env = env  # type: ignore[attr-defined]
    return run


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.bin": os.urandom(5 * MiB + 3),
        "sub/b.txt": b"hello rclone\n",
        "sub/deeper/empty.txt": b"",
        "sp ace %20 \u00fc & <odd>.txt": b"names that need quoting\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


@pytest.mark.parametrize("mount", WRITABLE)
def test_copy_and_check(gateway: Gateway, rclone, tmp_path: Path, mount: str) -> None:
    source = tmp_path / "src"
    files = make_tree(source)
    remote = f"dav:{gateway.folder(mount, 'rclone').strip('/')}"
    rclone("copy", str(source), remote)
    rclone("check", "--download", str(source), remote)
    listed = rclone("lsf", "-R", "--files-only", remote).stdout.splitlines()
    assert sorted(listed) == sorted(files)
    for rel, data in files.items():
        assert gateway.http("GET", quote(f"/{remote.removeprefix('dav:')}/{rel}")).content == data

    (source / "sub" / "b.txt").write_bytes(b"changed here, not there\n")
    assert rclone("check", "--download", str(source), remote, check=False).returncode != 0
    rclone("copy", str(source), remote)
    rclone("check", "--download", str(source), remote)
    rclone("purge", remote)
    assert not gateway.exists("/" + remote.removeprefix("dav:") + "/")


@contextlib.contextmanager
def mounted(rclone, remote: str, point: Path, log: Path, *options: str) -> Iterator[None]:
    """``rclone mount`` of ``remote`` on ``point`` until the block ends; it must then exit with 0."""
    command = ["mount", remote, str(point), "--log-file", str(log), "-v", *options]
    process = subprocess.Popen(["rclone", *command], env=rclone.env, stdin=subprocess.DEVNULL)
    fusermount = "fusermount3" if os.path.exists("/usr/bin/fusermount3") else "fusermount"
    try:
        wait_until(lambda: os.path.ismount(point), timeout=20, message=lambda: log.read_text(errors="replace"))
        yield
    finally:
        if os.path.ismount(point):
            subprocess.run([fusermount, "-u", str(point)], check=False)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text(errors="replace")


def test_mount(gateway: Gateway, rclone, tmp_path: Path, tool: Callable[[str], str]) -> None:
    tool("fusermount3") if os.path.exists("/usr/bin/fusermount3") else tool("fusermount")
    folder = gateway.folder("/data", "rclone-mount").strip("/")
    point = tmp_path / "mnt"
    point.mkdir()
    log = tmp_path / "mount.log"
    options = ("--vfs-cache-mode", "writes", "--vfs-write-back", "0s", "--cache-dir", str(tmp_path / "vfs"))
    with mounted(rclone, f"dav:{folder}", point, log, *options, "--dir-cache-time", "1s"):
        data = os.urandom(20 * MiB)
        (point / "big.bin").write_bytes(data)  # uploaded after close (write-back 0 s)
        url = f"/{folder}/big.bin"
        wait_until(
            lambda: gateway.http("HEAD", url).headers.get("Content-Length") == str(len(data)),
            timeout=60,
            message=lambda: log.read_text(errors="replace"),
        )
        assert hashlib.sha256(gateway.http("GET", url).content).digest() == hashlib.sha256(data).digest()
        assert hashlib.sha256((point / "big.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
        (point / "newdir").mkdir()
        (point / "big.bin").rename(point / "newdir" / "moved.bin")
        assert gateway.exists(f"/{folder}/newdir/moved.bin") and not gateway.exists(url)
        (point / "newdir" / "moved.bin").unlink()
        (point / "newdir").rmdir()
        assert not gateway.exists(f"/{folder}/newdir/")


def read_through_mount(rclone, tmp_path: Path, layer: str, name: str) -> bytes:
    point = tmp_path / "mnt"
    point.mkdir()
    with mounted(rclone, f"dav:{layer}", point, tmp_path / "mount.log", "--read-only"):
        assert name in os.listdir(point)
        return (point / name).read_bytes()


def test_mount_reads_a_dispel_window_never_made_whole(gateway: Gateway, rclone, tmp_path: Path) -> None:
    # A window as .tif (or .npy) is listed with its size before it is made.
    layer = "dispel/tiffstore/312/20181129/5"
    data = read_through_mount(rclone, tmp_path, layer, "1024-1280-0-512.tif")
    assert data == gateway.http("GET", f"/{layer}/1024-1280-0-512.tif").content


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known: rclone mount takes a file's size from its folder's listing and never asks the file itself; "
    "a .png preview never made is listed without a size (it is known once made), so rclone reads it as empty",
)
def test_mount_reads_a_dispel_preview_never_made_whole(gateway: Gateway, rclone, tmp_path: Path) -> None:
    layer = "dispel/tiffstore/312/20181129/6"
    data = read_through_mount(rclone, tmp_path, layer, "1024-1280-0-512.png")
    assert data == gateway.http("GET", f"/{layer}/1024-1280-0-512.png").content
