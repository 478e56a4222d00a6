"""One real davgate for the client acceptance tests: local, sftp, s3 and dispel mounts.

The server listens on an ephemeral port and serves

- ``/data``: a local folder (named as in the embedded default, so the examples of docs/CLIENTS.md run as written);
- ``/sftp``: a folder on the tests' throwaway sshd (:mod:`tests.sshd`);
- ``/s3``: a fresh prefix of the session's Ceph RGW bucket (:mod:`tests.rgw`);
- ``/demo``: a small DISPEL demo store, read-only, and ``/dispel`` over it;
- ``/ro``: a read-only local folder;

with Basic users from :data:`tests.helpers.USERS` and Bearer tokens for the
user :data:`EMAIL` (keys made by ``davgate keygen``). Tests look behind the
server at :attr:`Gateway.backends`: the folder behind ``/data``, ``/sftp``
and ``/ro``, and an :class:`S3Folder` for ``/s3``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from davgate.dispel.demo import DemoFile, write_store
from tests.helpers import USERS, Server, ServerLauncher, wait_until, write_htpasswd
from tests.rgw import Rgw
from tests.sshd import Sshd

REPO = Path(__file__).resolve().parents[2]
USER = "alice"
PASSWORD = USERS[USER]
EMAIL = "ee@example.org"
# The seed's example subject and date, small: 13 layers of 1280 x 512 (the seed's window 0-1200-0-400 fits).
DEMO = (DemoFile("312", "20181129", 13, 1280, 512, {"tile": (256, 256)}),)
DISPEL_PNG = "/dispel/tiffstore/312/20181129/12/0-1024-0-512.png"
DISPEL_WINDOW = "/dispel/tiffstore/312/20181129/12/0-1200-0-400"
WRITABLE = ("/data", "/sftp", "/s3")


@dataclass
class S3Folder:
    """The keys behind the ``/s3`` mount."""

    rgw: Rgw
    bucket: str
    prefix: str

    def read(self, rel: str) -> bytes:
        return self.rgw.client().get_object(Bucket=self.bucket, Key=f"{self.prefix}/{rel}")["Body"].read()

    def exists(self, rel: str) -> bool:
        page = self.rgw.client().list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/{rel}", MaxKeys=1)
        return bool(page.get("Contents"))


@dataclass
class Gateway:
    server: Server
    base: Path
    keys: Path
    backends: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The server's URL without a trailing slash."""
        return self.server.url

    @property
    def auth(self) -> tuple[str, str]:
        return USER, PASSWORD

    @property
    def host_port(self) -> str:
        return self.url.removeprefix("http://")

    def http(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request as alice, straight to the server (to check what a client did)."""
        kwargs.setdefault("timeout", 60)
        return requests.request(method, self.url + path, auth=self.auth, **kwargs)

    def exists(self, path: str) -> bool:
        status = self.http("PROPFIND", path, headers={"Depth": "0"}).status_code
        assert status in (207, 404), f"PROPFIND {path}: {status}"
        return status == 207

    def folder(self, mount: str, prefix: str = "t") -> str:
        """A fresh, empty folder in ``mount``: its path, ending in '/'."""
        path = f"{mount}/{prefix}-{uuid.uuid4().hex[:8]}/"
        assert self.http("MKCOL", path).status_code == 201
        return path

    def token(self, ttl: int = 600) -> str:
        command = [
            sys.executable,
            "-m",
            "davgate",
            "token",
            "--key",
            "ee",
            "--email",
            EMAIL,
            "--aud",
            "davgate",
            "--ttl",
            str(ttl),
        ]
        return subprocess.run(
            command, cwd=self.keys, capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.server.log_text().splitlines()[-lines:])


def make_keys(folder: Path) -> Path:
    folder.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "davgate",
        "keygen",
        "--out",
        "ee",
        "--email",
        EMAIL,
        "--name",
        "Execution environment",
    ]
    entry = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True, timeout=60).stdout
    (folder / "users.json").write_text(entry)
    return folder


def start_gateway(base: Path, sshd: Sshd, rgw: Rgw) -> Iterator[Gateway]:
    """Start the gateway under ``base``; yields it and stops it (exit code 0 required)."""
    for name in ("data", "remote", "ro", "demo"):
        (base / name).mkdir(parents=True)
    write_store(base / "demo", files=DEMO)
    (base / "ro" / "readme.txt").write_text("read only\n")
    keys = make_keys(base / "keys")
    s3 = rgw.mount_config()
    config = {
        "auth": {
            "htpasswd": write_htpasswd(base / "htpasswd"),
            "jwt": {"users": keys / "users.json", "audience": "davgate"},
            "anonymous": "none",
        },
        "mounts": {
            "/data": {"type": "local", "root": base / "data"},
            "/sftp": {
                "type": "sftp", "host": sshd.host, "port": sshd.port, "user": sshd.user, "key": sshd.key,
                "known_hosts": sshd.known_hosts, "root": str(base / "remote"), "timeout": 10.0,
            },
            "/s3": s3,
            "/ro": {"type": "local", "root": base / "ro", "readonly": True},
            "/demo": {"type": "local", "root": base / "demo", "readonly": True},
            "/dispel": {"type": "dispel", "templates": REPO / "conf" / "dispel", "source": "/demo"},
        },
        "state": {"type": "sqlite", "path": base / "state.db"},
        "cache": {"type": "local", "root": base / "cache"},
    }  # fmt: skip
    launcher = ServerLauncher(base / "servers")
    server = launcher(config, workers=2)
    gateway = Gateway(server, base, keys)
    gateway.backends = {
        "/data": base / "data",
        "/sftp": base / "remote",
        "/ro": base / "ro",
        "/s3": S3Folder(rgw, s3["bucket"], s3["prefix"]),
    }
    wait_until(lambda: gateway.exists("/s3/"), timeout=30, message="the s3 mount does not answer")
    try:
        yield gateway
    finally:
        launcher.stop_all()
