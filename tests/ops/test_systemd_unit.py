"""conf/davgate.service: a unit systemd accepts, with the settings davgate relies on."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "conf" / "davgate.service"
INSTALLED = "/opt/davgate"  # where the unit expects the checkout


def test_systemd_analyze_verifies_the_unit_without_a_warning(tmp_path: Path) -> None:
    # The unit names the installed checkout; this checkout's .venv stands in for it.
    unit = tmp_path / "davgate.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(REPO)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_unit_waits_for_readiness_stops_gracefully_and_runs_unprivileged() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys are case-sensitive
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["KillMode"] == "mixed"
    assert service["Restart"] == "on-failure"
    assert service["User"] == "davgate"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ExecStart"].split()[1:] == ["serve", "--config", "/etc/davgate/davgate.yaml"]
