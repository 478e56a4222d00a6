"""Three hosts on one machine: two davgate replicas and a PostgreSQL host, nginx in front.

Each host is a network namespace of its own (tests/netns.py): ``db`` runs
PostgreSQL (tests/postgres.py) on its address, ``app1`` and ``app2`` each
run a davgate replica on theirs, with ``state: {type: postgres}`` pointing
at ``db`` over the bridge; nginx (Debian's, running docker/nginx.conf,
tests/ops/nginx.py) balances between them from the test's own namespace.
The replicas share one local mount root (the hosts share the file system)
and nothing else but the database. What one replica grants, the other
honours; litmus passes through the load balancer, whose round robin sends
consecutive requests to both replicas.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.helpers import USERS, Server, ServerLauncher, wait_until, write_htpasswd
from tests.live.test_litmus import SUITES, run_litmus
from tests.netns import Network, network
from tests.ops.nginx import Nginx
from tests.ops.test_metrics import value
from tests.postgres import Postgres, make_folder
from tests.postgres import start as start_postgres

ALICE, BOB = ("alice", USERS["alice"]), ("bob", USERS["bob"])
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>alice</D:owner></D:lockinfo>"
)
PATCH = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:c>red</Z:c></D:prop></D:set></D:propertyupdate>'
)
PROPFIND = '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:c/></D:prop></D:propfind>'


@dataclass
class Cluster:
    url: str  # the load balancer's
    replicas: list[Server]
    database: Postgres
    network: Network


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("multihost")
    with network(["db", "app1", "app2"]) as hosts:
        folder = make_folder()
        try:
            database = start_postgres(folder, hosts.hosts["db"])
            try:
                yield from serve_replicas(base, hosts, database)
            finally:
                database.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def serve_replicas(base: Path, hosts: Network, database: Postgres) -> Iterator[Cluster]:
    """A replica on app1 and on app2 on ``database``, nginx in front; all stopped at the end."""
    (base / "data").mkdir()
    config = {
        "mounts": {"/data": {"type": "local", "root": base / "data"}},
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd")},
        "state": {"type": "postgres", "url": database.url(database.new_database()), "pool": 4},
    }
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
        yield Cluster(url, replicas, database, hosts)
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
