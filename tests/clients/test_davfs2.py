"""davfs2 (FUSE, as root): a scientist's network drive over the whole namespace.

Create a folder, write 20 MiB, read it back through a fresh cache (so the
bytes really come from the server) with sha256, rename, delete; and open a
DISPEL result as a file. Needs root and /dev/fuse.

davfs2 drops to the user ``davfs2`` after mounting, so its cache folder must
be reachable and writable by that group; pytest's tmp folders are not
(``/tmp/pytest-of-root`` is 0700), so the mount's files live in a folder of
their own under /tmp.
"""

from __future__ import annotations

import grp
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.gateway import DISPEL_PNG, PASSWORD, USER, Gateway
from tests.helpers import wait_until

MiB = 1024 * 1024
# buf_size 64: on kernels >= 6.16 the default (16) makes every readdir fail with EINVAL (davfs2 issue #22)
CONF = """\
secrets {secrets}
ask_auth 0
use_locks 1
delay_upload 0
cache_dir {cache}
dir_refresh 1
file_refresh 1
buf_size 64
"""


@dataclass
class Davfs:
    url: str
    folder: Path
    point: Path

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    def fresh_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir(mode=0o775)
        os.chown(self.cache, 0, grp.getgrnam("davfs2").gr_gid)
        self.cache.chmod(0o775)

    def mount(self) -> None:
        done = subprocess.run(
            ["mount", "-t", "davfs", "-o", f"conf={self.folder / 'davfs2.conf'}", self.url, str(self.point)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"mount.davfs: {done.stderr}"
        assert os.path.ismount(self.point)

    def umount(self) -> None:
        """Unmount; umount.davfs waits until every change is uploaded."""
        done = subprocess.run(["umount", str(self.point)], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"umount: {done.stderr}"
        assert not os.path.ismount(self.point)


@pytest.fixture
def davfs(gateway: Gateway, tool: Callable[[str], str]) -> Iterator[Davfs]:
    tool("mount.davfs")
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.fail("the davfs2 tests mount a file system: run them as root, with /dev/fuse")
    folder = Path(tempfile.mkdtemp(prefix="davgate-davfs2-", dir="/tmp"))
    folder.chmod(0o755)
    secrets = folder / "secrets"
    secrets.write_text(f"{gateway.url}/ {USER} {PASSWORD}\n")
    secrets.chmod(0o600)
    (folder / "davfs2.conf").write_text(CONF.format(secrets=secrets, cache=folder / "cache"))
    (folder / "mnt").mkdir()
    mounted = Davfs(gateway.url + "/", folder, folder / "mnt")
    mounted.fresh_cache()
    try:
        yield mounted
    finally:
        if os.path.ismount(mounted.point):
            subprocess.run(["umount", "-l", str(mounted.point)], check=False, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_create_write_read_rename_delete(gateway: Gateway, davfs: Davfs, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(20 * MiB))
    want = sha256_of(source)
    name = f"davfs2-{os.getpid()}"
    davfs.mount()
    assert {"data", "dispel", "s3", "sftp"} <= set(os.listdir(davfs.point))
    folder = davfs.point / "data" / name
    folder.mkdir()
    assert gateway.exists(f"/data/{name}/")  # MKCOL is synchronous
    shutil.copyfile(source, folder / "big.bin")  # into davfs2's cache; the PUT follows the close
    wait_until(
        lambda: gateway.http("HEAD", f"/data/{name}/big.bin").headers.get("Content-Length") == str(20 * MiB),
        timeout=60,
        message="the upload never reached the server",
    )
    davfs.umount()
    assert sha256_of(gateway.backends["/data"] / name / "big.bin") == want

    davfs.fresh_cache()  # so the read really GETs from the server
    davfs.mount()
    assert sha256_of(folder / "big.bin") == want
    (folder / "big.bin").rename(folder / "renamed.bin")
    assert sorted(os.listdir(folder)) == ["renamed.bin"]
    assert gateway.exists(f"/data/{name}/renamed.bin") and not gateway.exists(f"/data/{name}/big.bin")
    (folder / "renamed.bin").unlink()
    folder.rmdir()
    assert not gateway.exists(f"/data/{name}/")
    davfs.umount()


def test_read_a_dispel_result(gateway: Gateway, davfs: Davfs) -> None:
    """A result that has been made (by anyone) opens as a file, byte for byte what GET serves."""
    served = gateway.http("GET", DISPEL_PNG)
    assert served.status_code == 200 and served.content.startswith(b"\x89PNG")
    davfs.mount()
    layer = davfs.point / DISPEL_PNG.strip("/").rsplit("/", 1)[0]
    listed = sorted(os.listdir(layer))
    assert "0-1024-0-512.png" in listed and "0-1024-0-512.tif" in listed, listed
    result = davfs.point / DISPEL_PNG.strip("/")
    assert result.stat().st_size == len(served.content)
    assert sha256_of(result) == hashlib.sha256(served.content).hexdigest()
    with pytest.raises(OSError):
        (layer / "new.txt").write_text("DISPEL paths are read-only")
    davfs.umount()


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known: davfs2 takes a file's size from its folder's listing and never asks the file itself; a .png "
    "preview never made is listed without a size (known once made), so the first read is empty",
)
def test_first_read_of_a_result_never_made(gateway: Gateway, davfs: Davfs) -> None:
    # A window as .tif or .npy is listed with its size before it is made (test_read_a_dispel_result reads one).
    davfs.mount()
    layer = davfs.point / "dispel/tiffstore/312/20181129/3"
    assert "1024-1280-0-512.png" in os.listdir(layer)
    data = (layer / "1024-1280-0-512.png").read_bytes()
    davfs.umount()
    expected = gateway.http("GET", "/dispel/tiffstore/312/20181129/3/1024-1280-0-512.png").content
    assert expected.startswith(b"\x89PNG"), "the gateway does not serve the result"
    assert data == expected
