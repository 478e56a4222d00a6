"""The compose topology without containers: two davgate processes behind nginx on loopback.

Both share one SQLite state store and one local mount root, and keep DISPEL
results in an S3 cache on the real Ceph RGW (tests/rgw.py). nginx is
Debian's, running docker/nginx.conf with loopback upstreams (tests/ops/nginx.py).
Round robin sends consecutive requests to different processes, so litmus
here checks that locks, properties and ETags hold across processes (R1).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.dispel.demo_store import demo_store_path
from tests.helpers import USERS, Server, ServerLauncher, wait_until, write_htpasswd
from tests.live.test_litmus import SUITES, run_litmus
from tests.ops.nginx import REPO, Nginx
from tests.ops.test_metrics import value
from tests.rgw import SESSION_BUCKET, Rgw

AUTH = ("alice", USERS["alice"])
WINDOW = "/dispel/tiffstore/312/20181129/7/100-612-50-306"


@dataclass
class Topology:
    url: str  # the load balancer's
    servers: list[Server]
    nginx: Nginx
    rgw: Rgw
    cache_prefix: str


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, rgw: Rgw) -> Iterator[Topology]:
    base = tmp_path_factory.mktemp("loadbalancer")
    (base / "data").mkdir()
    prefix = f"lb-{uuid.uuid4().hex[:10]}/"
    config = {
        "mounts": {
            "/data": {"type": "local", "root": base / "data"},
            "/demo": {"type": "local", "root": demo_store_path(tmp_path_factory), "readonly": True},
            "/dispel": {"type": "dispel", "templates": REPO / "conf" / "dispel", "source": "/demo"},
        },
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd")},
        "state": {"type": "sqlite", "path": base / "state.db"},
        "cache": {
            "type": "s3", "endpoint": rgw.endpoint, "bucket": SESSION_BUCKET, "prefix": prefix,
            "access_key": rgw.env["AWS_ACCESS_KEY_ID"], "secret_key": rgw.env["AWS_SECRET_ACCESS_KEY"], "timeout": 5,
        },
    }  # fmt: skip
    launcher = ServerLauncher(base / "servers")
    nginx = Nginx(base / "nginx")
    try:
        servers = [launcher(config), launcher(config)]
        url = nginx.start([server.url.removeprefix("http://") for server in servers])
        yield Topology(url, servers, nginx, rgw, prefix)
    finally:
        nginx.stop()
        launcher.stop_all()


@pytest.mark.parametrize("suite", SUITES)
def test_litmus_through_the_load_balancer(suite: str, topology: Topology, tmp_path: Path) -> None:
    result = run_litmus(suite, f"{topology.url}/data/", tmp_path)
    expected = SUITES[suite]
    report = (
        f"litmus {suite} through nginx: {result.run} run, {result.passed} passed, {result.failed} failed, "
        f"{result.skipped} skipped, {result.warnings} warnings (expected {expected} of {expected}); "
        f"neon trace: {tmp_path / 'debug.log'}\n" + "\n".join(result.problems)
        + f"\n\n--- litmus output ---\n{result.output}\n--- nginx ---\n{topology.nginx.log_text()[-3000:]}"
        + "".join(f"\n--- davgate {s.url} ---\n" + "\n".join(s.log_text().splitlines()[-20:]) for s in topology.servers)
    )  # fmt: skip
    assert result.returncode == 0, report
    assert not result.problems, report
    assert (result.run, result.passed, result.failed) == (expected, expected, 0), report


def put_count(server: Server) -> float:
    text = requests.get(f"{server.url}/metrics", auth=AUTH, timeout=10).text
    return value(text, "davgate_requests_total", method="PUT", status="201")


def test_both_replicas_take_turns(topology: Topology) -> None:
    before = [put_count(server) for server in topology.servers]
    for number in range(10):
        response = requests.put(f"{topology.url}/data/turn-{number}.txt", data=b"x", auth=AUTH, timeout=10)
        assert response.status_code == 201

    def served() -> list[float]:
        return [put_count(server) - old for server, old in zip(topology.servers, before, strict=True)]

    wait_until(lambda: sum(served()) == 10, 10, message=lambda: f"PUTs counted per replica: {served()}")
    assert min(served()) >= 2, served()  # round robin (per nginx worker): both take a share


def test_request_ids_pass_through_the_load_balancer(topology: Topology) -> None:
    mine = requests.get(f"{topology.url}/healthz", headers={"X-Request-ID": "from-client-1"}, timeout=10)
    assert mine.headers["X-Request-ID"] == "from-client-1"
    made = requests.get(f"{topology.url}/readyz", timeout=10)
    assert made.status_code == 200, made.text
    request_id = made.headers["X-Request-ID"]
    assert len(request_id) == 32  # nginx's $request_id, given to davgate
    wait_until(lambda: f"request_id={request_id}" in topology.nginx.log_text(), 10)
    wait_until(lambda: any(f"[{request_id}]" in s.log_text() for s in topology.servers), 10)


def dispel_counts(topology: Topology) -> tuple[float, float]:
    text = requests.get(f"{topology.url}/metrics", auth=AUTH, timeout=10).text
    labels = {"template": "tiffstore"}
    return value(text, "davgate_dispel_executions_total", **labels), value(
        text, "davgate_dispel_cache_hits_total", **labels
    )


def test_dispel_runs_once_across_replicas_and_caches_on_ceph(topology: Topology) -> None:
    def get(_: int) -> bytes:
        with requests.Session() as session:
            response = session.get(f"{topology.url}{WINDOW}", auth=AUTH, timeout=60)
            assert response.status_code == 200, response.text
            return response.content

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(get, range(8)))
    assert len(set(bodies)) == 1 and len(bodies[0]) > 512 * 256 * 2  # a 512 x 256 uint16 window as a TIFF
    listed = topology.rgw.client().list_objects_v2(Bucket=SESSION_BUCKET, Prefix=topology.cache_prefix)
    assert listed.get("KeyCount", 0) >= 1, "the result is not in the S3 cache"
    assert dispel_counts(topology)[0] == 1  # one run for eight requests through two processes
    assert get(8) == bodies[0]
    wait_until(
        lambda: dispel_counts(topology) == (1, dispel_counts(topology)[1]) and dispel_counts(topology)[1] >= 1, 15
    )
