"""nginx (Debian's) as the load balancer of a test: docker/nginx.conf, with loopback upstreams.

The proxy settings under test are the ones compose.yaml ships; only the
upstream servers and the listen address are swapped, and nginx runs in the
foreground with its pid and error log in the test's folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import group_members, tail, wait_until

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "docker" / "nginx.conf"
UPSTREAM = re.compile(r"(upstream davgate \{\n)((?:[ \t]*server [^\n]*\n)+)")
LISTEN = re.compile(r"^(\s*)listen 8080;$", re.MULTILINE)


def render(upstreams: list[str], listen: str, source: str | None = None) -> str:
    """docker/nginx.conf with ``upstreams`` ("127.0.0.1:port") and ``listen`` ("127.0.0.1:port")."""
    text = NGINX_CONF.read_text() if source is None else source
    lines = "".join(f"        server {address} max_fails=3 fail_timeout=10s;\n" for address in upstreams)
    text, replaced = UPSTREAM.subn(lambda m: m.group(1) + lines, text)
    assert replaced == 1, "docker/nginx.conf has no 'upstream davgate' block of server lines"
    text, replaced = LISTEN.subn(lambda m: f"{m.group(1)}listen {listen};", text)
    assert replaced == 1, "docker/nginx.conf has no 'listen 8080;'"
    return text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Nginx:
    """One nginx master (and its workers) in ``folder``."""

    folder: Path
    url: str = ""
    process: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.path.exists(nginx), "nginx is not installed (apt-get install nginx)"
        return [
            nginx, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
            "-e", str(self.folder / "error.log"), "-g", f"daemon off; pid {self.folder / 'nginx.pid'};", *extra,
        ]  # fmt: skip

    def write_config(self, upstreams: list[str], port: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "nginx.conf").write_text(render(upstreams, f"127.0.0.1:{port}"))

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30, check=False)

    def start(self, upstreams: list[str]) -> str:
        port = free_port()
        self.write_config(upstreams, port)
        checked = self.check()
        assert checked.returncode == 0, checked.stderr
        log = (self.folder / "nginx.log").open("wb")
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        wait_until(lambda: self._accepts(port), 20, message=lambda: tail(self.log_text()))
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def _accepts(self, port: int) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"nginx exited with {self.process.returncode}:\n{tail(self.log_text())}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def log_text(self) -> str:
        parts = [self.folder / "nginx.log", self.folder / "error.log"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def stop(self) -> None:
        """Graceful stop (SIGQUIT); SIGKILL for the whole group if it takes too long."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        wait_until(lambda: not group_members(self.process.pid), 15)
