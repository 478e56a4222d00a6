"""Three hosts on one machine: two davgate replicas and a PostgreSQL host, nginx in front.

Each host is a network namespace of its own (tests/netns.py): ``db`` runs
PostgreSQL (tests/postgres.py) on its address, ``app1`` and ``app2`` each
run a davgate replica on theirs, with ``state: {type: postgres}`` pointing
at ``db`` over the bridge; nginx (Debian's, running docker/nginx.conf,
tests/ops/nginx.py) balances between them from the test's own namespace.
The replicas share one local mount root, the API's folder and its native
volumes (the hosts share the file system), the database, and the DISPEL
cache in the session's Ceph RGW, which listens on loopback in the test's
namespace and is reached through a relay on the bridge (tests/netns.py).

What one replica grants, the other honours; litmus passes through the load
balancer, whose round robin sends consecutive requests to both replicas;
an infrastructure made through one is served by the other within a second;
identical cold DISPEL requests on both run the template once; a copy on a
replica killed with SIGKILL is finished by the other after its lease; and
a soak through nginx with a replica killed and restarted loses nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.dispel.conftest import TIFFSTORE, stack, write_stack
from tests.helpers import USERS, Server, ServerLauncher, race, wait_until, write_htpasswd
from tests.live.test_litmus import SUITES, run_litmus
from tests.netns import Network, network, relay
from tests.ops.nginx import Nginx
from tests.ops.test_metrics import value
from tests.postgres import Postgres, make_folder
from tests.postgres import start as start_postgres
from tests.rgw import SESSION_BUCKET, Rgw

ALICE, BOB = ("alice", USERS["alice"]), ("bob", USERS["bob"])
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>alice</D:owner></D:lockinfo>"
)
PATCH = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:c>red</Z:c></D:prop></D:set></D:propertyupdate>'
)
PROPFIND = '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:c/></D:prop></D:propfind>'


ADMIN = "multihost-admin-token-0123456789"
MiB = 1024 * 1024
COPY_LEASE = 2.0  # seconds: a killed replica's copy is taken over this long after its last progress
COPY_RATE = 1 * MiB  # bytes per second per copy: a few MiB take a few seconds


@dataclass
class Cluster:
    url: str  # the load balancer's
    replicas: list[Server]
    database: Postgres
    network: Network
    launcher: ServerLauncher
    config: dict[str, Any]

    def kill(self, number: int) -> Server:
        """SIGKILL replica ``number`` (every process of it, no warning); the dead server."""
        dead = self.replicas[number]
        dead.kill()
        self.launcher.servers.remove(dead)  # stop_all would find it dead
        return dead

    def restart(self, number: int, dead: Server) -> Server:
        """Start replica ``number`` again on its host and port (nginx knows it there)."""
        host = self.network.hosts[("app1", "app2")[number]]
        port = dead.url.rsplit(":", 1)[1]
        config = {**self.config, "server": {"host": host.address, "allow_insecure_basic": True}}
        self.replicas[number] = self.launcher(config, wrap=host.command(), extra_args=("--port", port))
        return self.replicas[number]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, rgw: Rgw) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("multihost")
    with network(["db", "app1", "app2"]) as hosts:
        folder = make_folder()
        loopback = urlsplit(rgw.endpoint)
        try:
            database = start_postgres(folder, hosts.hosts["db"])
            with relay(hosts.gateway, (loopback.hostname, loopback.port)) as (address, port):
                cache = {**dispel_cache(rgw, base), "endpoint": f"http://{address}:{port}"}
                try:
                    yield from serve_replicas(base, hosts, database, cache)
                finally:
                    database.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def dispel_cache(rgw: Rgw, base: Path) -> dict[str, Any]:
    """The DISPEL cache section: the session's RGW bucket, a prefix of this module's own."""
    return {
        "type": "s3", "bucket": SESSION_BUCKET, "prefix": f"multihost-{uuid.uuid4().hex[:12]}/",
        "access_key": rgw.env["AWS_ACCESS_KEY_ID"], "secret_key": rgw.env["AWS_SECRET_ACCESS_KEY"],
        "staging": str(base / "staging"), "timeout": 5.0,
    }  # fmt: skip


def serve_replicas(base: Path, hosts: Network, database: Postgres, cache: dict[str, Any]) -> Iterator[Cluster]:
    """A replica on app1 and on app2 on ``database``, nginx in front; all stopped at the end.

    Besides /data, each serves DISPEL (/dispel, the tiffstore template over a
    small store at /source) with its cache on the RGW (``cache``).
    """
    (base / "data").mkdir()
    templates = base / "templates"
    templates.mkdir()
    (templates / "tiffstore.yaml").write_text(TIFFSTORE.read_text())
    write_stack(base / "source" / "tiffstore/312/20181129.tif", stack(1, 3, 200, 300), tile=(64, 64))
    config = {
        "mounts": {
            "/data": {"type": "local", "root": base / "data"},
            "/source": {"type": "local", "root": base / "source", "readonly": True},
            "/dispel": {"type": "dispel", "templates": templates, "source": "/source"},
        },
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd")},
        "state": {"type": "postgres", "url": database.url(database.new_database()), "pool": 4},
        "cache": cache,
        "api": {  # one signing key and one volumes folder for both (the hosts share the file system)
            "admin_token": ADMIN, "folder": base / "api", "volumes": base / "volumes",
            "poll_interval": 0.2, "copy_lease": COPY_LEASE, "copy_rate_limit": COPY_RATE,
        },
    }  # fmt: skip
    launcher, nginx = ServerLauncher(base / "servers"), Nginx(base / "nginx")
    try:
        replicas = [
            launcher(
                {**config, "server": {"host": hosts.hosts[name].address, "allow_insecure_basic": True}},
                wrap=hosts.hosts[name].command(),  # plain HTTP on the test network: Basic allowed
            )
            for name in ("app1", "app2")
        ]
        url = nginx.start([replica.url.removeprefix("http://") for replica in replicas])
        yield Cluster(url, replicas, database, hosts, launcher, config)
    finally:
        nginx.stop()
        launcher.stop_all()


def dav(base: str, method: str, path: str, body: str = "", auth: tuple[str, str] = ALICE, **headers: str):
    return requests.request(method, base + path, data=body, headers=headers, auth=auth, timeout=60)


def test_the_replicas_run_on_hosts_of_their_own(cluster: Cluster) -> None:
    network = cluster.network
    addresses = {host.address for host in network.hosts.values()}
    assert len(addresses) == 3 and "127.0.0.1" not in addresses
    for replica, name in zip(cluster.replicas, ("app1", "app2"), strict=True):
        assert replica.url.startswith(f"http://{network.hosts[name].address}:")
    assert cluster.database.url().split("@")[1].startswith(f"{network.hosts['db'].address}:")


def test_a_lock_taken_through_one_replica_is_honoured_by_the_other(cluster: Cluster) -> None:
    first, second = (replica.url for replica in cluster.replicas)
    assert dav(cluster.url, "PUT", "/data/doc.txt", "v1").status_code == 201
    locked = dav(first, "LOCK", "/data/doc.txt", LOCKINFO, Timeout="Second-600")
    assert locked.status_code == 200, locked.text
    token = locked.headers["Lock-Token"].strip("<>")

    assert dav(second, "PUT", "/data/doc.txt", "v2").status_code == 423  # no token: refused there too
    assert dav(second, "LOCK", "/data/doc.txt", LOCKINFO, auth=BOB).status_code == 423
    # through the load balancer, consecutive requests go to both replicas: every one refuses
    assert [dav(cluster.url, "DELETE", "/data/doc.txt").status_code for _ in range(4)] == [423] * 4
    assert dav(second, "PUT", "/data/doc.txt", "v2", If=f"(<{token}>)").status_code == 204  # the token works there

    assert dav(second, "UNLOCK", "/data/doc.txt", **{"Lock-Token": f"<{token}>"}).status_code == 204
    assert dav(first, "PUT", "/data/doc.txt", "v3").status_code == 204  # released everywhere
    assert dav(cluster.url, "GET", "/data/doc.txt").text == "v3"


def test_properties_set_through_one_replica_are_seen_by_the_other(cluster: Cluster) -> None:
    first, second = (replica.url for replica in cluster.replicas)
    assert dav(first, "PUT", "/data/p.txt", "x").status_code == 201
    assert dav(first, "PROPPATCH", "/data/p.txt", PATCH).status_code == 207
    found = dav(second, "PROPFIND", "/data/p.txt", PROPFIND, Depth="0")
    assert found.status_code == 207 and ">red<" in found.text


def test_consecutive_requests_land_on_both_replicas(cluster: Cluster) -> None:
    before = [put_count(replica) for replica in cluster.replicas]
    for number in range(10):
        assert dav(cluster.url, "PUT", f"/data/turn-{number}.txt", "x").status_code == 201

    def served() -> list[float]:
        return [put_count(replica) - old for replica, old in zip(cluster.replicas, before, strict=True)]

    wait_until(lambda: sum(served()) == 10, 10, message=lambda: f"PUTs counted per replica: {served()}")
    assert all(count > 0 for count in served()), served()


@pytest.mark.parametrize("suite", SUITES)
def test_litmus_through_the_load_balancer(suite: str, cluster: Cluster, tmp_path: Path) -> None:
    result = run_litmus(suite, f"{cluster.url}/data/", tmp_path)
    expected = SUITES[suite]
    report = f"litmus {suite} across hosts: {result.run} run, {result.passed} passed\n" + "\n".join(result.problems)
    assert result.returncode == 0 and not result.problems, report + f"\n{result.output}"
    assert (result.run, result.passed, result.failed) == (expected, expected, 0), report


def put_count(replica: Server) -> float:
    text = requests.get(f"{replica.url}/metrics", auth=ALICE, timeout=10).text
    return value(text, "davgate_requests_total", method="PUT", status="201")


DISPEL_WINDOW = "/dispel/tiffstore/312/20181129/1/10-250-20-180"


def test_sixteen_cold_dispel_requests_on_both_replicas_run_the_template_once(cluster: Cluster, rgw: Rgw) -> None:
    before = [executions(replica) for replica in cluster.replicas]
    urls = [replica.url + DISPEL_WINDOW for replica in cluster.replicas]
    answers = race(16, lambda number: requests.get(urls[number % 2], auth=ALICE, timeout=120))  # 8 on each

    assert [answer.status_code for answer in answers] == [200] * 16, [a.text[:200] for a in answers]
    assert len({answer.content for answer in answers}) == 1
    # the counter is the state store's, a total over both replicas: each reports the same one run
    ran = [executions(replica) - old for replica, old in zip(cluster.replicas, before, strict=True)]
    assert ran == [1, 1], f"template runs, as each replica reports the shared total: {ran}"
    prefix = cluster.config["cache"]["prefix"]
    stored = rgw.client().list_objects_v2(Bucket=SESSION_BUCKET, Prefix=prefix).get("Contents", [])
    assert len(stored) == 1, [item["Key"] for item in stored]
    cached = rgw.client().get_object(Bucket=SESSION_BUCKET, Key=stored[0]["Key"])["Body"].read()
    assert cached == answers[0].content


def executions(replica: Server) -> float:
    text = requests.get(f"{replica.url}/metrics", auth=ALICE, timeout=10).text
    return value(text, "davgate_dispel_executions_total", template="tiffstore")


def api(base: str, method: str, path: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{base}/api/v1{path}", json=body, headers={"x-access-token": token}, timeout=60)


def register(base: str, email: str) -> str:
    """A new API user, registered by the administrator; their token."""
    registered = api(base, "PUT", "/user", ADMIN, {"email": email, "name": "Scientist"})
    assert registered.status_code == 201, registered.text
    return registered.json()["token"]


def native_infrastructure(name: str) -> dict[str, Any]:
    """Two native adaptors served over WebDAV with ``name``'s own user and password."""
    adaptors = [{"name": "mynativestorage", "type": "native", "expose": "webdav"}, {"name": "other", "type": "native"}]
    logic = [{"name": "myDav", "type": "webdav", "user": name, "pass": f"pass-of-{name}"}]
    return {"name": name, "namespace": "user-001", "location": "uva",
            "storageAdaptorContainers": adaptors, "logicContainers": logic}  # fmt: skip


def test_an_infrastructure_created_through_one_replica_is_served_by_the_other_within_a_second(
    cluster: Cluster,
) -> None:
    first, second = (replica.url for replica in cluster.replicas)
    token = register(first, "maker@example.org")
    owner = ("infra-ab", "pass-of-infra-ab")
    assert dav(second, "PROPFIND", "/infra-ab/", auth=owner, Depth="0").status_code == 401  # no such user yet

    created = api(first, "POST", "/infrastructure", token, native_infrastructure("infra-ab"))
    assert created.status_code == 201, created.text
    made = time.monotonic()
    answer = wait_until(
        lambda: (reply := dav(second, "PROPFIND", "/infra-ab/", auth=owner, Depth="0")).status_code == 207 and reply,
        timeout=5,
    )
    waited = time.monotonic() - made
    assert waited < 1.0, f"the other replica served /infra-ab/ {waited:.2f} s after the 201"
    assert "/infra-ab/" in answer.text


def test_a_copy_on_a_killed_replica_is_finished_by_the_other_after_its_lease(cluster: Cluster) -> None:
    token = register(cluster.url, "stager@example.org")
    assert api(cluster.url, "POST", "/infrastructure", token, native_infrastructure("infra-cp")).status_code == 201
    owner = ("infra-cp", "pass-of-infra-cp")
    data = os.urandom(6 * MiB)  # six seconds at COPY_RATE
    put = requests.put(f"{cluster.url}/infra-cp/mynativestorage/big.bin", data=data, auth=owner, timeout=60)
    assert put.status_code == 201, put.text
    job = {"id": "copy-kill", "from": "mynativestorage:/big.bin", "to": "other:/staged/big.bin"}
    assert api(cluster.url, "POST", "/copy", token, [job]).status_code == 202

    started = "copy copy-kill of stager@example.org: mynativestorage:/big.bin -> other:/staged/big.bin (start 1)"
    running = wait_until(lambda: [n for n, r in enumerate(cluster.replicas) if started in r.log_text()], timeout=30)
    assert len(running) == 1, f"both replicas started the copy: {running}"
    number = running[0]
    wait_until(lambda: api(cluster.url, "GET", "/copy/copy-kill", token).json()["bytes"] > 0, timeout=30)
    dead = cluster.kill(number)  # kill -9 in the middle of the copy
    survivor = cluster.replicas[1 - number]
    try:
        state = wait_until(
            lambda: (
                (s := api(survivor.url, "GET", "/copy/copy-kill", token).json())["state"] in ("done", "failed") and s
            ),
            timeout=60,
        )
    finally:
        cluster.restart(number, dead)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (state["state"], state["bytes"], state["checksum"], state["attempts"]) == ("done", len(data), checksum, 2)
    assert "(start 2)" in survivor.log_text() and "(start 2)" not in dead.log_text()
    done = "copy copy-kill of stager@example.org: done"
    assert [dead.log_text().count(done), survivor.log_text().count(done)] == [0, 1]
    served = requests.get(f"{cluster.url}/infra-cp/other/staged/big.bin", auth=owner, timeout=60)
    assert served.status_code == 200 and served.content == data


SOAK_SECONDS, KILL_AT, RESTART_AT = 60.0, 20.0, 30.0  # seconds from the soak's start
SOAK_CLIENTS = 4
# The soak's methods nginx does not pass on to the other replica once sent: LOCK (not idempotent) and PUT
# (docker/nginx.conf streams request bodies, proxy_request_buffering off, so a body sent is gone).
NOT_RETRIED = {"LOCK", "PUT"}


@dataclass
class Soak:
    """What the soak's clients saw.

    ``ok`` counts answers as expected, by kind (``PUT``, ``GET``, ``PROPFIND``,
    ``LOCK``, ``PUT+lock``, ``GET+lock``, ``UNLOCK``). ``dropped`` holds the
    requests the killed replica was serving: the client's connection failed,
    or nginx answered 502 itself (its own error page: the upstream connection
    broke and the method is one nginx does not pass on again: LOCK, or PUT,
    whose streamed body is gone; nginx retries the others on the other
    replica unless it has begun answering, and then it cuts the client's
    connection). ``wrong`` is everything else: any
    other status, any body that is not one of the bodies that may be
    stored, any client that stopped on an error.
    """

    killed: float = float("inf")
    back: float = float("inf")
    ok: Counter[str] = field(default_factory=Counter)
    after_back: Counter[str] = field(default_factory=Counter)
    dropped: list[tuple[float, str]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def call(self, session: requests.Session, kind: str, expected: tuple[int, ...], method: str, url: str,
             **options: Any) -> requests.Response | None:  # fmt: skip
        """The answer if it is one of ``expected``; None if dropped or wrong (both recorded)."""
        try:
            reply = session.request(method, url, timeout=60, **options)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:  # cut off, or cut short
            self.dropped.append((time.monotonic(), f"{kind} {url}: {type(error).__name__}"))
            return None
        if reply.status_code == 502 and "<center>nginx" in reply.text and method in NOT_RETRIED:
            self.dropped.append((time.monotonic(), f"{kind} {url}: nginx 502"))
            return None
        if reply.status_code not in expected:
            self.wrong.append(f"{kind} {url}: {reply.status_code} {reply.text[:200]}")
            return None
        self.ok[kind] += 1
        if time.monotonic() > self.back:
            self.after_back[kind] += 1
        return reply


def soak_client(base: str, number: int, until: float, soak: Soak, stored: dict[str, set[bytes]]) -> None:
    """PUT, GET (checked), PROPFIND and LOCK+PUT+GET+UNLOCK until ``until``, through the load balancer.

    ``stored[path]`` holds every body the file may hold now: the last one
    answered 201/204, and any sent after it whose answer was dropped.
    """
    try:
        soak_rounds(base, number, until, soak, stored)
    except Exception as error:  # noqa: BLE001 -- a client that stops is a failure the test reports
        soak.wrong.append(f"client {number} stopped: {type(error).__name__}: {error}")


def soak_rounds(base: str, number: int, until: float, soak: Soak, stored: dict[str, set[bytes]]) -> None:
    session = requests.Session()
    session.auth = ALICE
    path = f"/data/soak/c{number}.bin"
    for round_number in itertools.count():
        if time.monotonic() > until:
            return
        body = os.urandom(random.randint(1, 256 * 1024))
        put = soak.call(session, "PUT", (201, 204), "PUT", base + path, data=body)
        stored[path] = {body} if put is not None else stored[path] | {body}
        check_get(session, soak, "GET", base + path, stored, path)
        listing = soak.call(session, "PROPFIND", (207,), "PROPFIND", base + "/data/soak/", headers={"Depth": "1"})
        if listing is not None and f"c{number}.bin" not in listing.text:
            soak.wrong.append(f"PROPFIND /data/soak/: c{number}.bin missing")
        locked_write(session, soak, base, f"/data/soak-locks/c{number}-{round_number}.bin", stored)


def locked_write(session: requests.Session, soak: Soak, base: str, path: str, stored: dict[str, set[bytes]]) -> None:
    """LOCK a new file, PUT it with the token, GET it back, UNLOCK: any request may go to either replica."""
    locked = soak.call(
        session, "LOCK", (200, 201), "LOCK", base + path, data=LOCKINFO, headers={"Timeout": "Second-60"}
    )
    if locked is None:
        return
    token = locked.headers["Lock-Token"]
    body = os.urandom(random.randint(1, 64 * 1024))
    put = soak.call(session, "PUT+lock", (201, 204), "PUT", base + path, data=body, headers={"If": f"({token})"})
    stored[path] = {body} if put is not None else {b"", body}  # b"": the LOCK made it empty
    check_get(session, soak, "GET+lock", base + path, stored, path)
    soak.call(session, "UNLOCK", (204,), "UNLOCK", base + path, headers={"Lock-Token": token})


def check_get(
    session: requests.Session, soak: Soak, kind: str, url: str, stored: dict[str, set[bytes]], path: str
) -> None:
    got = soak.call(session, kind, (200,), "GET", url)
    if got is None:
        return
    if got.content not in stored[path]:
        soak.wrong.append(f"{kind} {url}: {len(got.content)} bytes, none of the {len(stored[path])} bodies it may hold")
    else:
        stored[path] = {got.content}


def test_a_soak_with_one_replica_killed_and_restarted_loses_and_corrupts_nothing(cluster: Cluster) -> None:
    for folder in ("/data/soak/", "/data/soak-locks/"):
        assert dav(cluster.url, "MKCOL", folder).status_code == 201
    soak, stored = Soak(), [dict[str, set[bytes]]() for _ in range(SOAK_CLIENTS)]
    start = time.monotonic()
    clients = [
        threading.Thread(target=soak_client, args=(cluster.url, n, start + SOAK_SECONDS, soak, stored[n]))
        for n in range(SOAK_CLIENTS)
    ]
    for client in clients:
        client.start()
    stopping = threading.Event()
    stopping.wait(max(0.0, start + KILL_AT - time.monotonic()))
    soak.killed = time.monotonic()
    dead = cluster.kill(0)
    stopping.wait(max(0.0, start + RESTART_AT - time.monotonic()))
    back = cluster.restart(0, dead)
    soak.back = time.monotonic()
    for client in clients:
        client.join()

    report = f"ok {dict(soak.ok)}; after the restart {dict(soak.after_back)}; dropped {[d for _, d in soak.dropped]}"
    print(f"soak through nginx, {SOAK_CLIENTS} clients, {SOAK_SECONDS:g} s: {report}")  # shown with -s
    assert not soak.wrong, report + "\n" + "\n".join(soak.wrong[:20])
    assert all(soak.killed <= when <= soak.back for when, _ in soak.dropped), [w for w in soak.dropped]
    kinds = ("PUT", "GET", "PROPFIND", "LOCK", "PUT+lock", "GET+lock", "UNLOCK")
    assert all(soak.after_back[kind] > 0 for kind in kinds), report
    for files in stored:  # at the end, through each replica: one of the bodies it may hold, the same
        for path, bodies in files.items():
            first, second = (dav(replica.url, "GET", path).content for replica in cluster.replicas)
            assert first in bodies and second == first, path
    served = requests.get(f"{back.url}/metrics", auth=ALICE, timeout=10).text
    assert value(served, "davgate_requests_total", method="GET", status="200") > 0, (
        "nginx never used the restarted replica"
    )
