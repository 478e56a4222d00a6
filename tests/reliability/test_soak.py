"""The short soak (R3) in CI: 16 clients for 60 s on local, sftp, s3 and dispel mounts of one davgate.

Some names are shared by every client (:mod:`tests.reliability.soak`), so
writers race removers and movers of one name, as real users do.

Target: 0 responses 5xx, 0 corrupted bytes, RSS flat. "Flat" in 60 s means:
the RSS of all davgate processes grows by less than RSS_GROWTH_BOUND over
the second half (after warm-up, when caches, thread pools and pipeline
processes exist). The long form (5 minutes or more) is scripts/soak.py. The length and the
number of clients are the test's own: nothing shortens them in CI. 16
clients keep a 2-core machine busy without making the run a benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import USERS, Server, ServerLauncher
from tests.reliability.soak import Soak, Target
from tests.reliability.soak_env import dispel_urls, expected_dispel, soak_config, writable_mounts
from tests.rgw import Rgw
from tests.sshd import Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

AUTH = ("alice", USERS["alice"])
SECONDS = 60.0
CLIENTS = 16
RSS_GROWTH_BOUND_MIB = 64.0


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd, rgw: Rgw) -> Iterator[tuple[Server, dict]]:
    base = tmp_path_factory.mktemp("soak")
    config = soak_config(base, sshd, rgw, workers=2)
    launcher = ServerLauncher(base / "servers")
    yield launcher(config, workers=2), config
    launcher.stop_all()


def test_soak_mixed_methods_across_mounts_with_shared_names(soak_server: tuple[Server, dict], tmp_path: Path) -> None:
    server, config = soak_server
    mounts = writable_mounts(config)
    assert mounts == ("/data", "/hpc", "/s3")
    target = Target(server.url, AUTH, mounts, expected_dispel(server.url, AUTH, dispel_urls()))
    soak = Soak(target, clients=CLIENTS, duration=SECONDS, pgid=server.process.pid)
    report = soak.run()
    (tmp_path / "soak.json").write_text(json.dumps(report.to_json(), indent=1, default=str))
    text = report.text()
    print(text)
    assert report.server_errors == [], text
    assert report.corrupted_bytes == 0, text
    assert report.unexpected == [], text
    for method in (
        "PUT 201",
        "GET 200",
        "GET 206",
        "PROPFIND 207",
        "COPY 201",
        "MOVE 201",
        "DELETE 204",
        "LOCK 200",
        "UNLOCK 204",
    ):
        assert report.requests[method] > 0, f"no {method} in the soak:\n{text}"
    assert len(soak.shared_written) > 100, f"the shared names were hardly written:\n{text}"
    rss = report.rss_summary()
    assert rss and rss["second_half_growth_mib"] < RSS_GROWTH_BOUND_MIB, text
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]
