"""The Operators section of docs/OPERATIONS.md, run as written (on a free port instead of 8443)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.helpers import group_members, wait_until
from tests.ops.nginx import free_port

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "OPERATIONS.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def shell_blocks(text: str) -> list[str]:
    """The untagged fenced blocks: commands to paste (YAML and JSON examples are tagged)."""
    return [body for tag, body in FENCE.findall(text) if tag == ""]


def test_the_operators_commands_work_as_written(tmp_path: Path) -> None:
    blocks = shell_blocks(section("Operators"))
    assert len(blocks) == 1 and "8443" in blocks[0]
    script = blocks[0].replace("8443", str(free_port()))
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    done = subprocess.Popen(
        ["bash", "-e", "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = done.communicate(timeout=90)
    finally:
        if done.poll() is None:
            os.killpg(done.pid, signal.SIGKILL)
    wait_until(lambda: not group_members(done.pid), 20, message="davgate still running after the snippet's kill %1")
    stdout, stderr = out.decode(), err.decode()
    log = (tmp_path / "var/ops/davgate.log").read_text() if (tmp_path / "var/ops/davgate.log").exists() else ""
    assert done.returncode == 0, f"{stdout}\n{stderr}\n--- davgate.log ---\n{log}"
    assert "var/ops/davgate.yaml: OK" in stdout
    assert '{"status": "ok"}' in stdout and '"status": "ready"' in stdout
    assert re.search(r'^davgate_requests_total\{method="GET",status="200"\} \d', stdout, re.MULTILINE)
    assert '"request_id": "first-look"' in stdout and '"path": "/metrics"' in stdout
