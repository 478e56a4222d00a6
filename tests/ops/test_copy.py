"""``davgate copy``: a checked copy between mounts, with a progress bar."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import yaml


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "davgate", *args], capture_output=True, timeout=120, check=False)


def config_file(tmp_path: Path) -> Path:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    path = tmp_path / "davgate.yaml"
    path.write_text(yaml.safe_dump({
        "mounts": {"/a": {"type": "local", "root": str(tmp_path / "a")}, "/b": {"type": "local", "root": str(tmp_path / "b")}},
        "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
    }))  # fmt: skip
    return path


def test_copy_into_a_folder_with_a_bar_and_a_checksum(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "a" / "big.bin").write_bytes(data)
    done = run("--progress", "always", "copy", "--config", str(config), "/a/big.bin", "/b/in/")
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "b" / "in" / "big.bin").read_bytes() == data
    assert done.stdout.decode() == f"/b/in/big.bin: sha256:{hashlib.sha256(data).hexdigest()}\n"
    last = done.stderr.decode().rstrip("\n").split("\r")[-1]
    assert last.startswith("copy  [####################] 100%  3.0 MiB/3.0 MiB"), done.stderr


def test_copy_to_a_new_name_and_refusals(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    (tmp_path / "a" / "x.txt").write_bytes(b"hello")
    assert run("copy", "--config", str(config), "/a/x.txt", "/b/y.txt").returncode == 0
    assert (tmp_path / "b" / "y.txt").read_bytes() == b"hello"
    missing = run("copy", "--config", str(config), "/a/nothing.txt", "/b/")
    assert missing.returncode == 1
    assert missing.stderr.decode().startswith("davgate: copy failed: the source does not exist: nothing.txt")
    assert run("copy", "--config", str(config), "/elsewhere/x.txt", "/b/").returncode == 1
