"""Faults (R4) against real davgate processes, real sshd and real Ceph RGW.

- kill -9 during a PUT to an sftp and an s3 mount (the local mount's case is
  tests/live/test_server.py::test_kill_9_during_put_then_restart_...);
- sshd and RGW stopped and restarted while 8 clients keep working: 502/503
  within the bound, the other mounts serve on, recovery without a restart;
- a corrupted, a truncated and a deleted DISPEL cache blob: detected, made again;
- the SQLite state store held by another process: writers wait, then
  succeed; past ``state.busy_timeout`` they fail cleanly, nothing corrupt;
- a full disk under a local mount: 507, old content intact, nothing half-written.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from davgate.dispel import executions_total
from davgate.state.sqlite import SqliteStateStore
from tests.helpers import USERS, Server, ServerLauncher, wait_until, write_htpasswd
from tests.live.test_server import start_partial_put
from tests.reliability.soak import Soak, Target
from tests.reliability.soak_env import soak_config, writable_mounts
from tests.rgw import SESSION_BUCKET, Rgw
from tests.sshd import Sshd, local_user, sshd, start_sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

AUTH = ("alice", USERS["alice"])
MiB = 1024 * 1024
TEMP_PREFIX = ".davgate-upload-"
BACKEND_TIMEOUT = 2.0
BUSY_TIMEOUT = 6.0  # state.busy_timeout of the busy-store test
OUTAGE_BOUND = 2 * BACKEND_TIMEOUT + 3  # a refused or silent backend answers within this, retry included
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
)
PATCH = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:c>red</Z:c></D:prop></D:set></D:propertyupdate>'
)


def call(server: Server, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("auth", AUTH)
    return requests.request(method, server.url + path, timeout=60, **kwargs)


# --- kill -9 during a PUT to sftp and s3 -------------------------------------------------------


def test_kill_9_during_puts_to_sftp_and_s3_keeps_old_content_and_shows_no_litter(
    serve: ServerLauncher, tmp_path: Path, sshd: Sshd, rgw: Rgw
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    s3 = rgw.mount_config(timeout=5.0)
    config = {
        "auth": {"htpasswd": write_htpasswd(tmp_path / "htpasswd")},
        "mounts": {
            "/hpc": {"type": "sftp", "host": sshd.host, "port": sshd.port, "user": sshd.user, "key": sshd.key,
                     "known_hosts": sshd.known_hosts, "root": str(remote)},
            "/s3": s3,
        },
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
    }  # fmt: skip
    server = serve(config)
    for mount in ("/hpc", "/s3"):
        assert call(server, "PUT", f"{mount}/f.bin", data=b"old").status_code == 201
    socks = [start_partial_put(server, f"{mount}/f.bin", total=40 * MiB, sent=12 * MiB) for mount in ("/hpc", "/s3")]
    client = rgw.client()

    def uploads() -> list:
        return client.list_multipart_uploads(Bucket=SESSION_BUCKET, Prefix=s3["prefix"] + "/").get("Uploads", [])

    wait_until(
        lambda: [p for p in remote.iterdir() if p.name.startswith(TEMP_PREFIX)], 30, message="no sftp upload began"
    )
    wait_until(uploads, 30, message="no multipart upload began on s3")
    server.kill()
    for sock in socks:
        sock.close()
    serve.servers.remove(server)
    assert (remote / "f.bin").read_bytes() == b"old"
    assert client.get_object(Bucket=SESSION_BUCKET, Key=f"{s3['prefix']}/f.bin")["Body"].read() == b"old"

    restarted = serve(config)
    for mount in ("/hpc", "/s3"):
        assert call(restarted, "GET", f"{mount}/f.bin").content == b"old"
        listing = call(restarted, "PROPFIND", f"{mount}/", headers={"Depth": "1"})
        assert listing.status_code == 207 and TEMP_PREFIX not in listing.text
    # What is left on the backends, invisible to clients (docs/RELIABILITY.md, "Faults"):
    temps = [p for p in remote.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert len(temps) == 1  # swept by a listing once it is an hour old:
    old = time.time() - 2 * 3600
    os.utime(temps[0], (old, old))
    assert call(restarted, "PROPFIND", "/hpc/", headers={"Depth": "1"}).status_code == 207
    assert not [p for p in remote.iterdir() if p.name.startswith(TEMP_PREFIX)]
    for upload in uploads():  # an incomplete multipart upload: no object, but parts held until aborted
        client.abort_multipart_upload(Bucket=SESSION_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])


# --- backends stopped and started under load --------------------------------------------------


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = start_sshd(tmp_path / "own-sshd")
    try:
        yield server
    finally:
        server.stop()


def errors_on(soak: Soak, mount: str, since: float) -> int:
    with soak.lock:
        return sum(1 for e in soak.report.server_errors if e[1].startswith(mount + "/") and e[3] >= since)


def served(soak: Soak, mount: str) -> int:
    with soak.lock:
        return soak.served[mount]


def test_sshd_and_rgw_stopped_and_started_mid_run(
    serve: ServerLauncher, tmp_path: Path, own_sshd: Sshd, rgw: Rgw
) -> None:
    config = soak_config(tmp_path / "world", own_sshd, rgw, workers=2, backend_timeout=BACKEND_TIMEOUT)
    server = serve(config, workers=2)
    pid = server.process.pid
    target = Target(server.url, AUTH, writable_mounts(config), timeout=60)
    soak = Soak(target, clients=8, duration=600, pgid=pid, outage_bound=OUTAGE_BOUND)
    problems: list[str] = []

    def outage(mount: str, stop, start) -> None:
        wait_until(lambda: served(soak, mount) >= 20, 30, message=f"{mount} is not in use")
        with soak.outage(mount) as record:
            stop()
            others = {m: served(soak, m) for m in target.mounts if m != mount}
            wait_until(
                lambda: errors_on(soak, mount, record.down_at) >= 30, 30, message=f"too few 5xx from {mount} while down"
            )
            wait_until(
                lambda: all(served(soak, m) > n for m, n in others.items()), 30, message="the other mounts stopped"
            )
            start()
        wait_until(lambda: record.recovered_at is not None, 30, message=f"{mount} did not recover")
        after = served(soak, mount)
        wait_until(lambda: served(soak, mount) >= after + 20, 30, message=f"{mount} did not serve again")

    def inject() -> None:
        try:
            outage("/hpc", own_sshd.stop, own_sshd.start)
            outage("/s3", rgw.stop_gateway, rgw.start_gateway)
        except BaseException as error:  # noqa: BLE001 - reported below
            problems.append(repr(error))
        finally:
            soak.stop.set()

    injector = threading.Thread(target=inject)
    injector.start()
    report = soak.run()
    injector.join()
    text = report.text()
    assert not problems, f"{problems}\n{text}"
    assert report.server_errors == [], text  # every 5xx was a 502/503 of a down mount, in time
    assert report.corrupted_bytes == 0 and report.unexpected == [], text
    assert report.outage_answers >= 60, text
    print(text)
    assert [o["mount"] for o in report.outages] == ["/hpc", "/s3"], text
    assert all(o["recovered_after_s"] is not None and o["recovered_after_s"] < 30 for o in report.outages), text
    assert server.process.poll() is None and server.process.pid == pid  # recovered without a restart
    assert "exited (status" not in server.log_text()  # no worker died either


# --- the DISPEL cache -------------------------------------------------------------------------


def blobs(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and ".staging" not in p.parts]


def test_corrupted_truncated_and_deleted_cache_blobs_are_detected_and_made_again(
    serve: ServerLauncher, tmp_path: Path
) -> None:
    config = soak_config(tmp_path / "world", None, None, workers=2)
    config["cache"]["max_bytes"] = 100 * MiB
    server = serve(config, workers=2)
    url = "/dispel/tiffstore/312/20181129/1/0-200-0-100.npy"
    first = call(server, "GET", url)
    assert first.status_code == 200
    store = SqliteStateStore(tmp_path / "world" / "state.db")
    try:
        runs = executions_total(store)
        damages = {
            "corrupted": lambda p: p.write_bytes(bytes(b ^ 0xFF for b in p.read_bytes())),
            "truncated": lambda p: p.write_bytes(p.read_bytes()[:-100]),
            "deleted": lambda p: p.unlink(),
        }
        for name, damage in damages.items():
            found = blobs(tmp_path / "world" / "cache")
            assert found, f"no blob to damage ({name})"
            for blob in found:
                damage(blob)
            for _ in range(4):  # both workers answer some of these
                again = call(server, "GET", url)
                assert again.status_code == 200 and again.content == first.content, name
            runs += 1
            assert executions_total(store) == runs, f"the {name} blob was not made again exactly once"
    finally:
        store.close()
    assert "corrupt" in server.log_text().lower()


# --- the state store held by another process ----------------------------------------------------


HOLDER = (
    "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); db.execute('BEGIN IMMEDIATE');"
    "print('held', flush=True); sys.stdin.read()"
)


@contextlib.contextmanager
def held_store(path: Path) -> Iterator[None]:
    """Another process takes SQLite's write lock on the state store and keeps it for the block."""
    holder = subprocess.Popen(
        ["python3", "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.communicate("", timeout=30)


def test_a_busy_state_store_makes_writers_wait_or_fail_cleanly(serve: ServerLauncher, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    state = tmp_path / "state.db"
    config = {
        "auth": {"htpasswd": write_htpasswd(tmp_path / "htpasswd")},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "state": {"type": "sqlite", "path": state, "busy_timeout": BUSY_TIMEOUT},
    }
    server = serve(config, workers=2)
    assert call(server, "PUT", "/data/a.txt", data=b"a").status_code == 201
    assert call(server, "PUT", "/data/b.txt", data=b"b").status_code == 201
    assert call(server, "PUT", "/data/c.txt", data=b"c").status_code == 201

    results: dict[str, requests.Response] = {}
    with held_store(state):
        writers = [
            threading.Thread(
                target=lambda: results.__setitem__("lock", call(server, "LOCK", "/data/a.txt", data=LOCKINFO))
            ),
            threading.Thread(
                target=lambda: results.__setitem__("patch", call(server, "PROPPATCH", "/data/c.txt", data=PATCH))
            ),
        ]
        for writer in writers:
            writer.start()
        started = time.monotonic()
        assert call(server, "GET", "/data/a.txt").content == b"a"  # readers are not held up (WAL)
        assert call(server, "PROPFIND", "/data/", headers={"Depth": "1"}).status_code == 207
        assert time.monotonic() - started < BUSY_TIMEOUT - 2
        assert not results  # the writers are waiting
    for writer in writers:
        writer.join(30)
    assert results["lock"].status_code == 200 and results["patch"].status_code == 207, results
    assert "red" in call(server, "PROPFIND", "/data/c.txt", headers={"Depth": "0"}).text
    assert (
        call(server, "UNLOCK", "/data/a.txt", headers={"Lock-Token": results["lock"].headers["Lock-Token"]}).status_code
        == 204
    )

    with held_store(state):  # longer than busy_timeout
        started = time.monotonic()
        refused = call(server, "LOCK", "/data/b.txt", data=LOCKINFO)
        waited = time.monotonic() - started
    assert refused.status_code == 503 and BUSY_TIMEOUT - 0.5 < waited < BUSY_TIMEOUT + 10, (
        refused.status_code,
        waited,
    )
    assert "busy" in refused.text and refused.headers["Retry-After"] == "1"  # the reason reaches the client
    assert call(server, "PUT", "/data/b.txt", data=b"b2").status_code == 204  # no lock was left behind
    locked = call(server, "LOCK", "/data/b.txt", data=LOCKINFO)
    assert locked.status_code == 200
    with contextlib.closing(sqlite3.connect(state)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM locks").fetchone()[0] == 1


def test_a_delete_the_busy_store_refuses_leaves_no_properties_or_locks_behind(
    serve: ServerLauncher, tmp_path: Path
) -> None:
    """A DELETE answered 503 removed nothing; the next DELETE removes all, and a new file of that name starts clean."""
    (tmp_path / "data").mkdir()
    state = tmp_path / "state.db"
    config = {
        "auth": {"htpasswd": write_htpasswd(tmp_path / "htpasswd")},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "state": {"type": "sqlite", "path": state, "busy_timeout": BUSY_TIMEOUT},
    }
    server = serve(config)
    assert call(server, "PUT", "/data/d.txt", data=b"d").status_code == 201
    assert call(server, "PROPPATCH", "/data/d.txt", data=PATCH).status_code == 207
    token = call(server, "LOCK", "/data/d.txt", data=LOCKINFO).headers["Lock-Token"]
    with held_store(state):  # longer than busy_timeout
        refused = call(server, "DELETE", "/data/d.txt", headers={"If": f"({token})"})
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1", refused.status_code
    assert (tmp_path / "data" / "d.txt").read_bytes() == b"d"  # nothing removed: the file, its property, its lock
    assert ">red<" in call(server, "PROPFIND", "/data/d.txt", headers={"Depth": "0"}).text
    assert call(server, "PUT", "/data/d.txt", data=b"not yours").status_code == 423

    assert call(server, "DELETE", "/data/d.txt", headers={"If": f"({token})"}).status_code == 204
    assert call(server, "PUT", "/data/d.txt", auth=("bob", USERS["bob"]), data=b"new").status_code == 201
    assert ">red<" not in call(server, "PROPFIND", "/data/d.txt", headers={"Depth": "0"}).text
    assert call(server, "LOCK", "/data/d.txt", auth=("bob", USERS["bob"]), data=LOCKINFO).status_code == 200
    with contextlib.closing(sqlite3.connect(state)) as db:
        assert db.execute("SELECT count(*) FROM properties").fetchone()[0] == 0


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (this needs root, as CI has)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, check=False
    )
    assert done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.decode(errors='replace')}"
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_507_and_nothing_is_half_written(serve: ServerLauncher, tmp_path: Path, tiny_disk: Path) -> None:
    (tmp_path / "data").mkdir()
    config = {
        "auth": {"htpasswd": write_htpasswd(tmp_path / "htpasswd")},
        "mounts": {
            "/small": {"type": "local", "root": tiny_disk},
            "/data": {"type": "local", "root": tmp_path / "data"},
        },
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
    }
    server = serve(config)
    old = os.urandom(800 * 1024)
    assert call(server, "PUT", "/small/f.bin", data=old).status_code == 201
    assert call(server, "PUT", "/data/big.bin", data=os.urandom(3 * MiB)).status_code == 201
    full = call(server, "PUT", "/small/f.bin", data=os.urandom(3 * MiB))
    assert full.status_code == 507, full.text
    copied = call(server, "COPY", "/data/big.bin", headers={"Destination": server.url + "/small/copy.bin"})
    assert copied.status_code == 507, copied.text
    assert (tiny_disk / "f.bin").read_bytes() == old
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["f.bin"]  # no temp file, no partial copy
    assert call(server, "GET", "/small/f.bin").content == old
    assert call(server, "PUT", "/small/small.txt", data=b"fits").status_code == 201  # still serving, space is back
