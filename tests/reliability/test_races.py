"""Races on one name: real threads against a real davgate, on a local, an sftp and an s3 mount.

Many clients write, move, copy, delete, lock and patch the same few names at
once. Whatever the interleaving, every answer is one that tells the truth
(2xx, 404, 409, 412 or 423), never a 5xx; a PUT's ETag, when it sends one,
is the ETag of the bytes that PUT wrote; and nothing a DELETE removed leaves
dead properties or locks behind for whoever creates the name next.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
import requests

from tests.helpers import USERS, Server, ServerLauncher, race
from tests.reliability.soak_env import storage_config
from tests.rgw import Rgw
from tests.sshd import Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

AUTH = ("alice", USERS["alice"])
THREADS = 16
ROUNDS = 30  # requests per thread: 16 x 30 found the PUT/MOVE race on every run of today's code
TRUTHFUL = frozenset({200, 201, 204, 207, 404, 409, 412, 423})
MOUNTS = ("/data", "/hpc", "/s3")
LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>race</D:owner></D:lockinfo>"
)
PROPPATCH = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:davgate-race">'
    b"<D:set><D:prop><Z:color>%s</Z:color></D:prop></D:set></D:propertyupdate>"
)
PROPFIND_COLOR = (
    b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:davgate-race">'
    b"<D:prop><Z:color/></D:prop></D:propfind>"
)

names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd, rgw: Rgw) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("races")
    launcher = ServerLauncher(base / "servers")
    yield launcher(storage_config(base, sshd, rgw), workers=1)
    launcher.stop_all()


class Client:
    """One thread's HTTP session against the server; every answer is kept."""

    def __init__(self, server: Server) -> None:
        self.url = server.url
        self.session = requests.Session()
        self.session.auth = AUTH
        self.answers: list[tuple[str, str, int, str]] = []

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if "Destination" in headers:
            headers["Destination"] = self.url + quote(headers["Destination"])
        response = self.session.request(method, self.url + quote(path), headers=headers, timeout=60, **kwargs)
        self.answers.append((method, path, response.status_code, response.text[:800]))
        return response


def run_race(server: Server, action: Callable[[Client, int, int], None]) -> list[tuple[str, str, int, str]]:
    """``action(client, thread, round)`` for ROUNDS rounds in each of THREADS threads; every answer."""

    def thread(number: int) -> list[tuple[str, str, int, str]]:
        client = Client(server)
        with client.session:
            for round_number in range(ROUNDS):
                action(client, number, round_number)
        return client.answers

    return [answer for answers in race(THREADS, thread) for answer in answers]


def assert_truthful(answers: list[tuple[str, str, int, str]], server: Server) -> Counter[str]:
    untruthful = [answer for answer in answers if answer[2] not in TRUTHFUL]
    assert not untruthful, f"{len(untruthful)} of {len(answers)} answers: {untruthful[:5]}\n{server.log_text()[-3000:]}"
    return Counter(f"{method} {status}" for method, _path, status, _text in answers)


def folder(server: Server, mount: str) -> str:
    path = f"{mount}/race-{next(names)}"
    assert requests.request("MKCOL", server.url + path, auth=AUTH, timeout=30).status_code == 201
    return path


def body(thread: int, round_number: int) -> bytes:
    """A body of a size no other thread's write has, so an ETag (size in it) names one write."""
    return (f"{thread:02d}-{round_number:03d}|".encode()) * (1 + thread + THREADS * round_number)


@pytest.mark.parametrize("mount", MOUNTS)
def test_put_racing_move_of_the_same_name(server: Server, mount: str) -> None:
    """The issue's reproduction: PUT and MOVE of one name alternate in 16 threads."""
    base = folder(server, mount)
    name, elsewhere = f"{base}/one.bin", f"{base}/moved.bin"
    written: dict[str, bytes] = {}

    def action(client: Client, thread: int, round_number: int) -> None:
        if (thread + round_number) % 2:
            client("MOVE", name, headers={"Destination": elsewhere, "Overwrite": "T"})
            return
        data = body(thread, round_number)
        response = client("PUT", name, data=data)
        if response.status_code < 300 and "ETag" in response.headers:
            written[response.headers["ETag"]] = data

    counts = assert_truthful(run_race(server, action), server)
    assert counts["PUT 201"] + counts["PUT 204"] > 0 and counts["MOVE 201"] + counts["MOVE 204"] > 0, counts
    assert_etags_name_their_writes(server, [name, elsewhere], written)


def assert_etags_name_their_writes(server: Server, paths: list[str], written: dict[str, bytes]) -> None:
    """A file whose ETag a PUT answered holds exactly the bytes of that PUT."""
    assert written, "no PUT answered with an ETag"
    for path in paths:
        got = requests.get(server.url + path, auth=AUTH, timeout=60)
        if got.status_code == 404:
            continue
        assert got.status_code == 200, got.status_code
        etag = got.headers.get("ETag")
        if etag in written:
            assert got.content == written[etag], f"{path}: ETag {etag} names other bytes"


@pytest.mark.parametrize("mount", MOUNTS)
def test_put_delete_copy_move_of_one_name(server: Server, mount: str) -> None:
    """Writers, removers and copiers of one name and its neighbours: every answer truthful, every ETag honest."""
    base = folder(server, mount)
    paths = [f"{base}/a.bin", f"{base}/b.bin"]
    written: dict[str, bytes] = {}

    def action(client: Client, thread: int, round_number: int) -> None:
        path, other = paths[(thread + round_number) % 2], paths[(thread + round_number + 1) % 2]
        kind = (thread * 7 + round_number) % 4
        if kind == 0:
            client("DELETE", path)
        elif kind in (1, 2):
            method = "COPY" if kind == 1 else "MOVE"
            client(method, path, headers={"Destination": other, "Overwrite": "T"})
        else:
            data = body(thread, round_number)
            response = client("PUT", path, data=data)
            if response.status_code < 300 and "ETag" in response.headers:
                written[response.headers["ETag"]] = data

    counts = assert_truthful(run_race(server, action), server)
    succeeded = {key.split()[0] for key in counts if int(key.split()[1]) < 300}
    assert "PUT" in succeeded and succeeded & {"COPY", "MOVE"}, counts  # under load a mover may always lose its race
    assert_etags_name_their_writes(server, paths, written)


@pytest.mark.parametrize("mount", MOUNTS)
def test_proppatch_racing_delete_leaves_no_property_behind(server: Server, mount: str) -> None:
    """A property written while its file is deleted goes with the file; a new file of that name has none."""
    base = folder(server, mount)
    path = f"{base}/p.txt"

    def action(client: Client, thread: int, round_number: int) -> None:
        kind = (thread + round_number) % 3
        if kind == 0:
            client("PUT", path, data=b"p")
        elif kind == 1:
            client("PROPPATCH", path, data=PROPPATCH % f"t{thread}".encode())
        else:
            client("DELETE", path)

    assert_truthful(run_race(server, action), server)
    requests.delete(server.url + path, auth=AUTH, timeout=60)
    assert requests.put(server.url + path, data=b"new", auth=AUTH, timeout=60).status_code == 201
    found = requests.request(
        "PROPFIND", server.url + path, data=PROPFIND_COLOR, headers={"Depth": "0"}, auth=AUTH, timeout=60
    )
    assert found.status_code == 207 and "color" in found.text, found.text
    assert ">t" not in found.text, f"a property of a deleted file came back: {found.text}"


@pytest.mark.parametrize("mount", MOUNTS)
def test_lock_put_unlock_racing_delete_and_put(server: Server, mount: str) -> None:
    """LOCK (creating the file or not), PUT under the lock, UNLOCK; others PUT and DELETE the name meanwhile."""
    base = folder(server, mount)
    path = f"{base}/l.bin"

    def action(client: Client, thread: int, round_number: int) -> None:
        kind = (thread + round_number) % 3
        if kind == 0:
            client("DELETE", path)
            return
        if kind == 1:
            client("PUT", path, data=body(thread, round_number))
            return
        locked = client("LOCK", path, data=LOCKINFO, headers={"Timeout": "Second-30", "Depth": "0"})
        token = locked.headers.get("Lock-Token")
        if locked.status_code in (200, 201) and token:
            client("PUT", path, data=body(thread, round_number), headers={"If": f"({token})"})
            client("UNLOCK", path, headers={"Lock-Token": token})

    counts = assert_truthful(run_race(server, action), server)
    assert counts["LOCK 200"] + counts["LOCK 201"] > 0, counts
    requests.delete(server.url + path, auth=AUTH, timeout=60)
    created = requests.put(server.url + path, data=b"free", auth=AUTH, timeout=60)
    assert created.status_code == 201, f"a lock outlived its file: {created.status_code} {created.text[:300]}"


@pytest.mark.parametrize("mount", MOUNTS)
def test_mkcol_racing_delete_and_put(server: Server, mount: str) -> None:
    base = folder(server, mount)
    path = f"{base}/f"

    def action(client: Client, thread: int, round_number: int) -> None:
        kind = (thread + round_number) % 3
        if kind == 0:
            client("MKCOL", path)
        elif kind == 1:
            client("DELETE", path)
        else:
            client("PUT", f"{path}/inner.txt", data=b"x")

    counts = assert_truthful([a for a in run_race(server, action) if a[0] != "MKCOL" or a[2] != 405], server)
    assert counts["MKCOL 201"] > 0, counts


@pytest.mark.parametrize("mount", MOUNTS)
def test_get_racing_put_returns_one_whole_write(server: Server, mount: str) -> None:
    """A GET while the file is replaced answers with one write's bytes whole (or 409: ask again), never a mixture."""
    base = folder(server, mount)
    path = f"{base}/g.bin"
    written = {body(THREADS, 0)}
    assert requests.put(server.url + path, data=body(THREADS, 0), auth=AUTH, timeout=60).status_code == 201
    torn: list[int] = []

    def action(client: Client, thread: int, round_number: int) -> None:
        if thread % 2:
            data = body(thread, round_number)
            written.add(data)
            client("PUT", path, data=data)
            return
        got = client("GET", path)
        if got.status_code == 200 and got.content not in written:
            torn.append(len(got.content))

    counts = assert_truthful(run_race(server, action), server)
    assert counts["GET 200"] > 0, counts
    assert not torn, f"{len(torn)} GETs answered bytes no PUT wrote (lengths {torn[:5]}): {counts}"


@pytest.mark.parametrize("mount", MOUNTS)
def test_a_lock_that_creates_its_file_never_replaces_a_racing_write(server: Server, mount: str) -> None:
    """LOCK on a missing name makes an empty file; if a PUT got there first and succeeded, its bytes stay."""
    base = folder(server, mount)
    lost = []
    for round_number in range(40):
        path = f"{base}/n{round_number}.bin"
        data = body(1, round_number)
        client = [Client(server), Client(server)]
        put, locked = race(
            2,
            lambda n: (
                client[n]("PUT", path, data=data)
                if n == 0
                else client[n]("LOCK", path, data=LOCKINFO, headers={"Timeout": "Second-30", "Depth": "0"})
            ),
        )
        assert_truthful(client[0].answers + client[1].answers, server)
        if put.status_code in (201, 204):
            content = requests.get(server.url + path, auth=AUTH, timeout=60).content
            if content != data:
                lost.append((path, put.status_code, locked.status_code, len(content)))
    assert not lost, f"PUTs answered success and their bytes were replaced by a LOCK's empty file: {lost}"
