"""/healthz and /readyz in-process: no authentication, bounded time; what is down goes to the log, not the page."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.sshd import Sshd, frozen, own_sshd
from tests.wsgi.client import Client

__all__ = ["own_sshd"]  # a fixture, shared through this import


def test_healthz_needs_no_credentials_and_calls_no_backend(make_app) -> None:
    app = make_app(special={"/ceph": "outage"})
    app.mounts["/ceph"].down.set()
    response = Client(app, user=None).get("/healthz")
    assert response.status == 200
    assert json.loads(response.body) == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_checks_the_state_store_and_every_mount(make_app) -> None:
    app = make_app(special={"/ceph": "outage"})
    response = Client(app, user=None).get("/readyz")
    assert response.status == 200, response.text
    assert json.loads(response.body) == {"status": "ready"}
    assert app.ops is not None
    assert app.ops.readiness.report() == (True, {"state": "ok", "/data": "ok", "/ceph": "ok"})


def test_readyz_tells_the_public_only_not_ready_and_the_log_what(make_app, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(special={"/ceph": "outage"})
    app.mounts["/ceph"].down.set()
    with caplog.at_level(logging.INFO, logger="davgate.health"):
        response = Client(app, user=None).get("/readyz")
        assert response.status == 503
        assert json.loads(response.body) == {"status": "not ready"}  # no mount path, no reason: the page is public
        assert b"/ceph" not in response.body and b"/data" not in response.body
        Client(app, user=None).get("/readyz")
    said = [r.getMessage() for r in caplog.records if r.name == "davgate.health" and r.getMessage().startswith("not")]
    assert said == ["not ready: /ceph (storage backend unavailable)"]  # once, not once per probe
    app.mounts["/ceph"].down.clear()
    # results are kept for a second (cache_for): then the mount is seen back
    wait_until(
        lambda: Client(app, user=None).get("/readyz").status == 200, timeout=5, message="/ceph never ready again"
    )


def test_readyz_gives_up_on_a_frozen_sftp_server_in_bounded_time(make_app, own_sshd: Sshd, tmp_path: Path) -> None:
    """A real sftp mount whose sshd is stopped (SIGSTOP): connected, it never answers; /readyz does not wait for it."""
    remote = tmp_path / "remote"
    remote.mkdir()
    hpc = {
        "type": "sftp", "host": own_sshd.host, "port": own_sshd.port, "user": own_sshd.user, "key": str(own_sshd.key),
        "known_hosts": str(own_sshd.known_hosts), "root": str(remote), "timeout": 20.0,
    }  # fmt: skip
    app = make_app(mounts={"/hpc": hpc}, server={"ready_timeout": 0.5})
    assert Client(app, user=None).get("/readyz").status == 200  # connected, and ready
    with frozen(own_sshd):
        wait_until(lambda: Client(app, user=None).get("/readyz").status == 503, timeout=5)  # the ready result expires
        started = time.monotonic()
        response = Client(app, user=None).get("/readyz")
        elapsed = time.monotonic() - started
        assert response.status == 503
        assert app.ops is not None
        assert app.ops.readiness.report()[1]["/hpc"] == "timed out after 0.5 s"
        assert elapsed < 2.0
    wait_until(
        lambda: Client(app, user=None).get("/readyz").status == 200, timeout=15, message="/hpc never ready again"
    )


def test_readyz_reports_a_broken_state_store(make_app) -> None:
    app = make_app()
    app.store.close()
    response = Client(app, user=None).get("/readyz")
    assert response.status == 503
    assert app.ops is not None
    ready, checks = app.ops.readiness.report()
    assert not ready and [name for name, outcome in checks.items() if outcome != "ok"] == ["state"]


def test_health_endpoints_take_get_and_head_only(make_app) -> None:
    client = Client(make_app(), user=None)
    head = client.request("HEAD", "/healthz")
    assert (head.status, head.body) == (200, b"")
    refused = client.request("DELETE", "/readyz")
    assert refused.status == 405
    assert refused.headers["allow"] == "GET, HEAD"
