"""litmus, all five suites, against an s3 mount of a real davgate on the real Ceph RGW.

Dead properties and locks of the mount live in davgate's state store, so
props and locks pass exactly as on a local mount: 104 of 104, none skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, ServerLauncher, write_htpasswd
from tests.live.test_litmus import SUITES, run_litmus
from tests.rgw import Rgw


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, rgw: Rgw) -> Iterator[Server]:
    assert shutil.which("litmus"), "litmus is not installed (apt-get install litmus)"
    base = tmp_path_factory.mktemp("s3-litmus")
    config = {
        "mounts": {"/s3": rgw.mount_config()},
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd"), "anonymous": "none"},
        "state": {"type": "sqlite", "path": base / "state.db"},
    }
    launcher = ServerLauncher(base / "servers")
    yield launcher(config)
    launcher.stop_all()


@pytest.mark.parametrize("suite", SUITES)
def test_litmus_suite_on_s3(suite: str, server: Server, tmp_path: Path) -> None:
    result = run_litmus(suite, f"{server.url}/s3/", tmp_path)
    expected = SUITES[suite]
    report = (
        f"litmus {suite} on s3: {result.run} run, {result.passed} passed, {result.failed} failed, "
        f"{result.skipped} skipped, {result.warnings} warnings, exit code {result.returncode}; "
        f"neon trace: {tmp_path / 'debug.log'}\n" + "\n".join(result.problems)
        + f"\n\n--- litmus output ---\n{result.output}\n--- davgate log, last lines ---\n"
        + "\n".join(server.log_text().splitlines()[-40:])
    )  # fmt: skip
    assert result.returncode == 0, report
    assert not result.problems, report
    assert (result.run, result.passed, result.failed) == (expected, expected, 0), report
