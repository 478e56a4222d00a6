"""Headless Chromium (Debian's) on davgate's folder pages, over every kind of mount: the DOM, a screenshot.

Links to collections end in '/' and show the bare name; a file name that
contains markup is shown as text, never run. (The pages' actions are
tested in tests/pages.) Chromium never downloads
anything: it runs with a fresh profile and the flags of the recipes
(no background networking, no component updates, no sync).
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from lxml import html

from tests.clients.gateway import PASSWORD, USER, Gateway

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1024,700",
]  # fmt: skip
MARKUP_NAME = "<img src=x onerror=document.title='pwned'> &amp; <b>.txt"


def chromium(program: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile.mkdir()
    done = subprocess.run(
        [program, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return done


def test_listing_in_chromium(gateway: Gateway, tool: Callable[[str], str], tmp_path: Path) -> None:
    program = tool("chromium")
    folder = gateway.folder("/data", "browser")
    assert gateway.http("MKCOL", folder + "sub%20folder/").status_code == 201
    assert gateway.http("PUT", folder + quote(MARKUP_NAME), data=b"x").status_code == 201
    url = f"http://{USER}:{PASSWORD}@{gateway.host_port}{folder}"

    dom = chromium(program, tmp_path / "profile-dom", "--dump-dom", url).stdout.decode()
    page = html.fromstring(dom)
    assert page.findtext(".//title") is not None and "pwned" not in page.findtext(".//title")
    assert page.find_class("user")[0].text_content() == f"Signed in as {USER}"
    links = {a.text_content().strip(): a.get("href") for a in page.iter("a")}
    assert links["sub folder"] == "./sub%20folder/"  # a collection: trailing '/', the bare name shown
    assert links[MARKUP_NAME] == "./" + quote(MARKUP_NAME, safe="")  # the name as text, the link quoted
    assert not page.findall(".//img") and not page.findall(".//td//b")  # nothing of the name became markup

    root = html.fromstring(
        chromium(
            program, tmp_path / "profile-root", "--dump-dom", f"http://{USER}:{PASSWORD}@{gateway.host_port}/"
        ).stdout.decode()
    )
    mounts = {a.text_content().strip(): a.get("href") for a in root.iter("a")}
    assert {mounts[name] for name in ("data", "s3", "sftp", "dispel")} == {"./data/", "./s3/", "./sftp/", "./dispel/"}

    shot = tmp_path / "listing.png"
    chromium(program, tmp_path / "profile-shot", f"--screenshot={shot}", url)
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1024, 700)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    gateway.http("DELETE", folder)


def test_an_uploaded_page_opens_sandboxed(gateway: Gateway, tool: Callable[[str], str], tmp_path: Path) -> None:
    """A page someone put on a mount shows, but its script does not run with the viewer's credentials."""
    program = tool("chromium")
    folder = gateway.folder("/data", "sandbox")
    page = (
        b"<html><head><title>static</title></head><body><p id='text'>as uploaded</p>"
        b"<script>document.title = 'ran'; document.getElementById('text').textContent = 'script ran';</script>"
        b"</body></html>"
    )
    assert gateway.http("PUT", folder + "page.html", data=page).status_code == 201
    url = f"http://{USER}:{PASSWORD}@{gateway.host_port}{folder}page.html"
    dom = html.fromstring(chromium(program, tmp_path / "profile-page", "--dump-dom", url).stdout.decode())
    assert dom.findtext(".//title") == "static"
    assert dom.get_element_by_id("text").text_content() == "as uploaded"
    gateway.http("DELETE", folder)
