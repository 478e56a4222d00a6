"""davgate as users run it: Basic auth from a bcrypt htpasswd, default worker count.

One server carries every mount the benchmark needs: /data (local, the
same folder the anchors serve), /demo and /dispel (the tiffstore template
over the demo store), /s3 (the real RGW) and /sftp (the real sshd).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.clients import basic_header
from bench.procs import START_TIMEOUT, BenchError, Server, spawn, stop, wait_ready

REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"davgate: listening on (http://\S+)")
USER = "bench"
BUCKET = "davgate-bench"


def write_htpasswd(path: Path) -> str:
    """A new user with a random password, hashed by ``davgate htpasswd`` (bcrypt, its default cost)."""
    password = secrets.token_urlsafe(18)
    subprocess.run(
        [sys.executable, "-m", "davgate", "htpasswd", str(path), USER, "--password-stdin"],
        input=password + "\n", text=True, check=True, capture_output=True,
    )  # fmt: skip
    return password


def config(fs: Path, htpasswd: Path, rgw: dict[str, str], sshd: dict[str, str], engine: str | None = None) -> dict:
    s3 = {
        "type": "s3", "endpoint": rgw["S3_ENDPOINT_URL"], "bucket": BUCKET, "create_bucket": True,
        "access_key": rgw["AWS_ACCESS_KEY_ID"], "secret_key": rgw["AWS_SECRET_ACCESS_KEY"],
    }  # fmt: skip
    sftp = {
        "type": "sftp", "host": sshd["SSHD_HOST"], "port": int(sshd["SSHD_PORT"]), "user": sshd["SSHD_USER"],
        "key": sshd["SSHD_KEY"], "known_hosts": sshd["SSHD_KNOWN_HOSTS"], "root": str(fs / "sftp"),
    }  # fmt: skip
    server: dict[str, object] = {"host": "127.0.0.1", "port": 0}  # workers: the default, one per core
    if engine is not None:
        server["engine"] = engine
    return {
        "server": server,
        "auth": {"htpasswd": str(htpasswd), "anonymous": "none"},
        "mounts": {
            "/data": {"type": "local", "root": str(fs / "www")},
            "/demo": {"type": "local", "root": str(fs / "demo"), "readonly": True},
            "/dispel": {"type": "dispel", "templates": str(REPO / "conf" / "dispel"), "source": "/demo"},
            "/s3": s3,
            "/sftp": sftp,
        },
        "state": {"type": "sqlite", "path": str(fs / "state" / "state.db")},
        "cache": {"type": "local", "root": str(fs / "cache")},
    }


def start(fs: Path, work: Path, rgw: dict[str, str], sshd: dict[str, str], engine: str | None = None) -> Server:
    """davgate with the benchmark's config; ``engine`` None: davgate's default HTTP server."""
    folder = work / "davgate"
    folder.mkdir(parents=True, exist_ok=True)
    (fs / "state").mkdir(exist_ok=True)
    htpasswd = folder / "htpasswd"
    password = write_htpasswd(htpasswd)
    path = folder / "davgate.yaml"
    path.write_text(yaml.safe_dump(config(fs, htpasswd, rgw, sshd, engine), sort_keys=False))
    command = [sys.executable, "-m", "davgate", "serve", "--config", str(path), "--log-level", "WARNING"]
    server = spawn("davgate", command, folder / "log", cwd=folder)
    server.auth = (USER, password)
    server.base = "/data"
    server.extra["state_db"] = fs / "state" / "state.db"
    try:
        server.url = listening_url(server)
        wait_ready(server, server.url + "/data/", headers=basic_header(server.auth))
    except BaseException:
        stop(server)
        raise
    return server


def listening_url(server: Server) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = LISTENING.search(server.log.read_text(errors="replace"))
        if match:
            return match.group(1)
        if server.process.poll() is not None:
            raise BenchError(f"davgate exited with {server.process.returncode}:\n{server.log_tail()}")
        time.sleep(0.05)
    raise BenchError(f"davgate did not report listening:\n{server.log_tail()}")


def workers(server: Server) -> int:
    """How many worker processes davgate said it runs."""
    match = re.search(r"\((\d+) workers?[,)]", server.log.read_text())
    return int(match.group(1)) if match else 0
