"""Recovery of a real davgate: staging copies whose worker dies or freezes, and graceful stops.

- a worker process killed (SIGKILL) mid-copy: its lease runs out and another
  process finishes the copy, once (the job's ``attempts``, the log and the
  webhook say so);
- a worker frozen (SIGSTOP) past its lease: another takes the copy over; the
  frozen one, woken, finds its lease lost and stops without finishing it;
- SIGTERM with uploads in flight in several workers, on cheroot and on
  granian: each finishes; one that would never finish is cut after
  ``server.shutdown_timeout``, leaving the old content and no temp file.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.webhooks import Listener, webhook
from tests.helpers import Server, ServerLauncher, group_members, wait_until
from tests.live.test_server import TEMP_PREFIX, start_partial_put, temp_files

__all__ = ["webhook"]  # a fixture, shared through this import

ADMIN = "live-admin-token-0123456789abcdef"
DAV = ("user", "dav-pass-for-test-001")
OWNER = "owner@example.org"
MiB = 1024 * 1024
TIMEOUT = 30
LEASE = 2.0


def staging_config(tmp_path: Path, htpasswd_file: Path, webhook: Listener) -> dict[str, Any]:
    (tmp_path / "data").mkdir(exist_ok=True)
    return {
        "server": {"outbound_allow": [webhook.allowance]},
        "auth": {"htpasswd": htpasswd_file},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "state": {"type": "sqlite", "path": tmp_path / "state" / "state.db"},
        "api": {"admin_token": ADMIN, "poll_interval": 0.2, "copy_lease": LEASE, "copy_rate_limit": 2 * MiB},
    }


def api(server: Server, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{server.url}/api/v1{path}", json=body, headers={"x-access-token": token}, timeout=TIMEOUT
    )


def job(server: Server, token: str, job_id: str) -> dict[str, Any]:
    return api(server, "GET", f"/copy/{job_id}", token).json()


def staged_copy(server: Server, webhook: Listener, size: int) -> tuple[str, bytes]:
    """A user, an infrastructure of two native adaptors, a source file, and job c1 copying it: (token, bytes)."""
    token = api(server, "PUT", "/user", ADMIN, {"email": OWNER, "name": "Owner"}).json()["token"]
    description = {
        "name": "test-001", "namespace": "user-001", "location": "uva",
        "storageAdaptorContainers": [{"name": "mynativestorage", "type": "native"}, {"name": "other", "type": "native"}],
        "logicContainers": [{"name": "myDav", "type": "webdav", "user": DAV[0], "pass": DAV[1]}],
    }  # fmt: skip
    assert api(server, "POST", "/infrastructure", token, description).status_code == 201
    data = os.urandom(size)
    put = requests.put(f"{server.url}/test-001/mynativestorage/big.bin", data=data, auth=DAV, timeout=TIMEOUT)
    assert put.status_code == 201
    copy = {"id": "c1", "from": "mynativestorage:/big.bin", "to": "other:/big.bin", "webhook": webhook.url}
    assert api(server, "POST", "/copy", token, [copy]).status_code == 202
    return token, data


def opened_by(pids: list[int], predicate: Any) -> list[int]:
    """The processes among ``pids`` with a file open whose path satisfies ``predicate``."""
    found = []
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
        if any(predicate(link) for link in links):
            found.append(pid)
    return found


def copying_worker(server: Server, tmp_path: Path) -> int:
    """The worker process that reads the copy's source (no other process has it open)."""
    sources = list(tmp_path.rglob("big.bin"))  # the copy's target has a temporary name until it is done
    assert len(sources) == 1, sources
    source = str(sources[0])
    workers = [pid for pid in group_members(server.process.pid) if pid != server.process.pid]
    holders = wait_until(lambda: opened_by(workers, lambda link: link == source), timeout=10)
    assert len(holders) == 1, holders
    return holders[0]


def assert_done_once(server: Server, token: str, webhook: Listener, data: bytes) -> dict[str, Any]:
    """c1 done with two starts, its target right, and "done" logged and called back once."""
    state = wait_until(lambda: (s := job(server, token, "c1"))["state"] in ("done", "failed") and s, timeout=60)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (state["state"], state["attempts"], state["bytes"], state["checksum"]) == ("done", 2, len(data), checksum)
    got = requests.get(f"{server.url}/test-001/other/big.bin", auth=DAV, timeout=TIMEOUT)
    assert hashlib.sha256(got.content).hexdigest() == checksum[7:]
    hooks = wait_until(lambda: webhook.bodies("c1"), timeout=TIMEOUT)
    wait_until(lambda: job(server, token, "c1")["webhook"]["state"] == "delivered", timeout=TIMEOUT)
    assert [(h["state"], h["checksum"]) for h in hooks] == [("done", checksum)]
    assert server.log_text().count(f"copy c1 of {OWNER}: done") == 1
    return state


def test_a_worker_killed_mid_copy_loses_its_lease_and_another_finishes_the_copy_once(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, webhook: Listener
) -> None:
    server = serve(staging_config(tmp_path, htpasswd_file, webhook), workers=2)
    token, data = staged_copy(server, webhook, 4 * MiB)  # about 2 s at the rate limit
    wait_until(lambda: job(server, token, "c1")["bytes"] > 0, timeout=TIMEOUT)
    killed = copying_worker(server, tmp_path)
    os.kill(killed, signal.SIGKILL)
    assert_done_once(server, token, webhook, data)
    assert f"worker {killed} exited" in server.log_text()
    listing = requests.request("PROPFIND", f"{server.url}/test-001/other/", auth=DAV, headers={"Depth": "1"}, timeout=TIMEOUT)  # fmt: skip
    assert TEMP_PREFIX not in listing.text  # the dead worker's partial upload is not shown


def test_a_worker_frozen_past_its_lease_stops_when_it_wakes_and_the_copy_is_done_once(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, webhook: Listener
) -> None:
    server = serve(staging_config(tmp_path, htpasswd_file, webhook), workers=2)
    token, data = staged_copy(server, webhook, 4 * MiB)
    wait_until(lambda: job(server, token, "c1")["bytes"] > 0, timeout=TIMEOUT)
    frozen = copying_worker(server, tmp_path)
    os.kill(frozen, signal.SIGSTOP)
    try:
        wait_until(lambda: job(server, token, "c1")["attempts"] == 2, timeout=TIMEOUT)  # taken over after the lease
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert_done_once(server, token, webhook, data)
    assert "copy c1 of owner@example.org: another process took it over" in server.log_text()
    assert f"worker {frozen} exited" not in server.log_text()  # it lived on, and let go


# --- graceful stop --------------------------------------------------------------------------------


def stop_config(tmp_path: Path, htpasswd_file: Path, engine: str, shutdown_timeout: float) -> dict[str, Any]:
    (tmp_path / "data").mkdir(exist_ok=True)
    return {
        "auth": {"htpasswd": htpasswd_file},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
        "server": {"engine": engine, "shutdown_timeout": shutdown_timeout},
    }


def workers_of(server: Server) -> list[int]:
    """The worker processes: the children of davgate's first process."""
    pid = server.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def upload_in_each_worker(server: Server, data: Path, workers: list[int], total: int, sent: int) -> list[socket.socket]:
    """Partial PUTs (``sent`` of ``total`` bytes), opened four at a time until every worker holds one.

    Workers take connections as they come (cheroot: one shared socket; granian: one socket each, by
    the kernel's hash), so which worker gets which is found afterwards, in ``/proc``.
    """
    socks: list[socket.socket] = []
    for _ in range(8):
        socks += [start_partial_put(server, f"/data/up-{len(socks) + n}.bin", total, sent) for n in range(4)]
        wait_until(lambda: len(temp_files(data)) == len(socks), timeout=10, message="an upload never began")
        if len(opened_by(workers, lambda link: TEMP_PREFIX in link)) == len(workers):
            return socks
    raise AssertionError(f"{len(socks)} uploads, and still a worker without one")


def finish_upload(sock: socket.socket, rest: int) -> bytes:
    """Send the rest of a partial PUT; the status line of its answer."""
    sock.sendall(b"n" * rest)
    with sock.makefile("rb") as answer:
        line = answer.readline()
    sock.close()
    return line


@pytest.mark.parametrize("engine", ["cheroot", "granian"])
def test_sigterm_lets_uploads_in_flight_in_every_worker_finish(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, engine: str
) -> None:
    server = serve(stop_config(tmp_path, htpasswd_file, engine, 10), workers=2)
    workers = wait_until(lambda: len(found := workers_of(server)) == 2 and found, timeout=10)
    socks = upload_in_each_worker(server, tmp_path / "data", workers, total=2 * MiB, sent=MiB)
    server.process.send_signal(signal.SIGTERM)
    answers = [finish_upload(sock, MiB) for sock in socks]
    assert all(answer.startswith(b"HTTP/1.1 201") for answer in answers), answers
    assert server.process.wait(timeout=TIMEOUT) == 0
    serve.servers.remove(server)
    assert sorted(p.stat().st_size for p in (tmp_path / "data").iterdir()) == [2 * MiB] * len(socks)
    assert not temp_files(tmp_path / "data")


@pytest.mark.parametrize(("engine", "aborted"), [("cheroot", True), ("granian", False)])
def test_shutdown_timeout_cuts_an_upload_that_would_not_finish(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, engine: str, aborted: bool
) -> None:
    """cheroot ends the request (the upload is aborted); granian kills its worker (the next start sweeps the temp)."""
    shutdown_timeout = 2.0
    config = stop_config(tmp_path, htpasswd_file, engine, shutdown_timeout)
    server = serve(config)
    stuck = tmp_path / "data" / "stuck.bin"
    assert requests.put(f"{server.url}/data/stuck.bin", data=b"old", auth=("alice", "wonderland"), timeout=TIMEOUT).ok
    sock = start_partial_put(server, "/data/stuck.bin", total=2 * MiB, sent=MiB)
    wait_until(lambda: temp_files(tmp_path / "data"), timeout=10, message="the upload never began")
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    sock.settimeout(shutdown_timeout + 20)
    try:
        answer = sock.recv(100)  # the client never sends the rest: only the server can end this
    except ConnectionResetError:
        answer = b""
    cut_after = time.monotonic() - stopped_at
    assert server.process.wait(timeout=TIMEOUT) == 0
    serve.servers.remove(server)
    sock.close()
    assert not answer.startswith(b"HTTP/1.1 2"), answer
    assert cut_after >= shutdown_timeout, f"cut {cut_after:.1f} s after SIGTERM, before server.shutdown_timeout"
    assert stuck.read_bytes() == b"old"
    assert bool(temp_files(tmp_path / "data")) != aborted
    serve(config)
    assert not temp_files(tmp_path / "data")
