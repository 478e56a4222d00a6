"""The data every server serves, written to the tmpfs before any server starts.

www/big.bin            the large file (GET; also the PUT source)
www/props/f-NNNNN      the PROPFIND folder's files
www/small/s-NNNN       4 KiB files for the GET clients
www/small/put/         where the PUT clients write
www/put/               large PUT targets (removed after each measurement)
www/p9/                a file of the warm DISPEL result's size (written later)
sftp/big.bin           a hard link to www/big.bin, the sftp mount's root
demo/tiffstore/...     ``davgate demo-data``
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.settings import MiB, Settings

BLOCK = 8 * MiB


def random_file(path: Path, size: int) -> None:
    block = os.urandom(min(BLOCK, size))
    with path.open("wb") as out:
        left = size
        while left > 0:
            left -= out.write(block[: min(left, len(block))])


def prepare(fs: Path, settings: Settings) -> None:
    www = fs / "www"
    for folder in ("props", "small/put", "put", "p9"):
        (www / folder).mkdir(parents=True, exist_ok=True)
    random_file(www / "big.bin", settings.big_bytes)
    stamp = b"x" * 64
    for i in range(settings.propfind_files):
        (www / "props" / f"f-{i:05d}").write_bytes(stamp)
    small = os.urandom(settings.small_bytes)
    for i in range(settings.small_files):
        (www / "small" / f"s-{i:04d}").write_bytes(small)
    (fs / "sftp").mkdir()
    remote = fs / "sftp" / "big.bin"
    if settings.remote_bytes == settings.big_bytes:
        os.link(www / "big.bin", remote)
    else:
        random_file(remote, settings.remote_bytes)
    (fs / "cache").mkdir()
    subprocess.run([sys.executable, "-m", "davgate", "demo-data", str(fs / "demo")], check=True, capture_output=True)
