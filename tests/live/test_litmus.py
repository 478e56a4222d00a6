"""litmus (Debian's WebDAV compliance suite) against a real davgate.

One server per module, like a plain ``litmus URL`` run: its five suites in
order against the same server, each as its own test. Every suite must run
all of its tests and pass them, with no test skipped and no warning; litmus
0.13 against stock WsgiDAV gives 104 of 104.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import USERS, Server, ServerLauncher, write_htpasswd

USER = "alice"

# Tests per suite in litmus 0.13 (Debian 12), in the order litmus runs them.
SUITES = {"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}
assert sum(SUITES.values()) == 104

LITMUS_TIMEOUT = 300

SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")
SKIPPED_ALL = re.compile(r"<- all tests skipped for `(\w+)'")
PROBLEM = re.compile(r"\b(FAIL|FAILED|ABORTED|SKIPPED|XFAIL|WARNING)\b")


@dataclass
class LitmusRun:
    """What one litmus suite reported."""

    output: str
    returncode: int
    run: int | None = None
    passed: int | None = None
    failed: int | None = None
    skipped: int = 0
    warnings: int = 0
    problems: list[str] = field(default_factory=list)


def parse(output: str, returncode: int) -> LitmusRun:
    result = LitmusRun(output, returncode)
    for line in output.splitlines():
        if match := SUMMARY.search(line):
            result.run, result.passed, result.failed = map(int, match.groups()[1:])
        if SKIPPED_ALL.search(line):
            result.problems.append(line)
        if match := PROBLEM.search(line):
            result.problems.append(line)
            result.skipped += match.group(1) == "SKIPPED"
            result.warnings += match.group(1) == "WARNING"
    return result


def clean(raw: str) -> str:
    """litmus redraws each test line after a carriage return: keep what is shown."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in raw.splitlines())


def run_litmus(suite: str, url: str, folder: Path) -> LitmusRun:
    """Run one suite; litmus writes debug.log and child.log into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        ["litmus", url, USER, USERS[USER]],
        cwd=folder,
        env={**os.environ, "TESTS": suite},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=LITMUS_TIMEOUT,
        check=False,
    )
    return parse(clean(completed.stdout.decode("utf-8", "replace")), completed.returncode)


ENGINES = {"cheroot": 1, "granian": 2}  # engine -> worker processes

# granian drops a "#fragment" from the request target before the application
# sees it (cheroot refuses such requests with 400), so litmus warns that a
# DELETE of ".../frag/#ment" removed the collection. Only that warning, only there.
KNOWN_WARNINGS = {"granian": ("delete_fragment",)}


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    assert shutil.which("litmus"), "litmus is not installed (apt-get install litmus)"
    base = tmp_path_factory.mktemp("litmus")
    (base / "data").mkdir()
    config = {
        "mounts": {"/data": {"type": "local", "root": base / "data"}},
        "auth": {"htpasswd": write_htpasswd(base / "htpasswd"), "anonymous": "none"},
        "state": {"type": "sqlite", "path": base / "state.db"},
        "server": {"engine": request.param},
    }
    launcher = ServerLauncher(base / "servers")
    yield launcher(config, workers=ENGINES[request.param])
    launcher.stop_all()


@pytest.mark.parametrize("suite", SUITES)
def test_litmus_suite(suite: str, server: Server, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    result = run_litmus(suite, f"{server.url}/data/", tmp_path)
    engine = request.node.callspec.params["server"]
    known = KNOWN_WARNINGS.get(engine, ())
    result.problems = [line for line in result.problems if not any(f". {name}." in line for name in known)]
    expected = SUITES[suite]
    report = (
        f"litmus {suite}: {result.run} run, {result.passed} passed, {result.failed} failed, "
        f"{result.skipped} skipped, {result.warnings} warnings, exit code {result.returncode} "
        f"(expected {expected} of {expected}); neon trace: {tmp_path / 'debug.log'}\n"
        + "\n".join(result.problems)
        + f"\n\n--- litmus output ---\n{result.output}"
        + f"\n--- davgate log ({server.log_path}), last lines ---\n"
        + "\n".join(server.log_text().splitlines()[-40:])
    )
    assert result.returncode == 0, report
    assert not result.problems, report
    assert (result.run, result.passed, result.failed) == (expected, expected, 0), report
