"""A davgate for the page tests, and Debian's Chromium driven by Debian's chromedriver (selenium).

The server serves ``/data`` (a local folder), ``/ro`` (read-only),
``/shared`` (alice writes, everyone reads), ``/demo`` with ``/dispel`` over
it (the reference template with a thumbnail output, and the tile pyramids),
to the Basic users of :data:`tests.helpers.USERS` and to the Bearer token
user :data:`EMAIL`. Chromium runs headless with a fresh profile and
the flags of the recipes (no background networking, no component updates,
no sync): it downloads nothing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from selenium import webdriver

from davgate.dispel.demo import DemoFile, write_store
from tests.helpers import USERS, Server, ServerLauncher, write_htpasswd

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
EMAIL = "ee@example.org"
# The reference template with a thumbnail output, which the pages show beside each result (davgate.pages.dispel).
THUMBNAIL_OUTPUT = """
  thumbnail:
    media_type: image/png
    pipeline: [{element: downsample, factor: 8, method: mean}, {element: stretch_8bit}, {element: encode_png}]
"""
DEMO = (DemoFile("312", "20181129", 13, 640, 256, {"tile": (256, 256)}),)


@dataclass
class Site:
    """The running server and the folders behind its mounts."""

    server: Server
    base: Path
    keys: Path

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, method: str, path: str, user: str = "alice", **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        return requests.request(method, self.url + path, auth=(user, USERS[user]), **kwargs)

    def login_url(self, path: str, user: str = "alice") -> str:
        """``path``'s URL with Basic credentials in it, as a user who typed them into the browser's prompt."""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}:{USERS[user]}@{rest}{path}"

    def token(self, *scopes: str) -> str:
        command = [sys.executable, "-m", "davgate", "token", "--key", "ee", "--email", EMAIL, "--aud", "davgate"]
        command += [argument for scope in scopes for argument in ("--scope", scope)]
        done = subprocess.run(command, cwd=self.keys, capture_output=True, text=True, check=True, timeout=60)
        return done.stdout.strip()


def make_keys(folder: Path) -> Path:
    folder.mkdir(parents=True)
    command = [sys.executable, "-m", "davgate", "keygen", "--out", "ee", "--email", EMAIL, "--name", "Pages"]
    entry = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True, timeout=60).stdout
    (folder / "users.json").write_text(entry)
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("pages")
    for name in ("data", "ro", "shared", "demo"):
        (base / name).mkdir()
    (base / "ro" / "readme.txt").write_text("read only\n")
    write_store(base / "demo", files=DEMO)
    (base / "templates").mkdir()
    reference = (REPO / "conf" / "dispel" / "tiffstore.yaml").read_text()
    outputs, rest = reference.split("\ndefault_output:", 1)
    (base / "templates" / "tiffstore.yaml").write_text(
        outputs.rstrip("\n") + THUMBNAIL_OUTPUT + "default_output:" + rest
    )
    (base / "templates" / "tiles.yaml").write_text((REPO / "conf" / "dispel" / "tiles.yaml").read_text())
    keys = make_keys(base / "keys")
    config = {
        "auth": {
            "htpasswd": write_htpasswd(base / "htpasswd"),
            "jwt": {"users": keys / "users.json", "audience": "davgate"},
            "anonymous": "none",
        },
        "mounts": {
            "/data": {"type": "local", "root": base / "data"},
            "/ro": {"type": "local", "root": base / "ro", "readonly": True},
            "/shared": {"type": "local", "root": base / "shared", "access": {"read": ["*"], "write": ["alice"]}},
            "/demo": {"type": "local", "root": base / "demo", "readonly": True},
            "/dispel": {"type": "dispel", "templates": base / "templates", "source": "/demo"},
        },
        "state": {"type": "sqlite", "path": base / "state.db"},
        "cache": {"type": "local", "root": base / "cache"},
    }
    launcher = ServerLauncher(base / "servers")
    try:
        yield Site(launcher(config), base, keys)
    finally:
        launcher.stop_all()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., webdriver.Chrome]]:
    """``browser(width=1200, height=800)``: a fresh headless Chromium; all are quit after the test."""
    drivers: list[webdriver.Chrome] = []

    def start(width: int = 1200, height: int = 800) -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations, script errors
        for flag in (
            *FLAGS,
            f"--window-size={width},{height}",
            f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
