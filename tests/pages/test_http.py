"""The pages over HTTP: their headers, no inline script, assets served before authentication, the reserved path."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests
from lxml import html

from davgate.pages import assets
from davgate.pages.listing import human_size, natural_key
from tests.pages.conftest import REPO, Site


def test_a_page_has_a_strict_policy_and_no_inline_script(site: Site) -> None:
    page = site.http("GET", "/data/")
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == "'self'"
    assert policy["object-src"] == policy["base-uri"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Cache-Control"] == "no-store"
    tree = html.fromstring(page.content)
    assert all(script.get("src") and not (script.text or "").strip() for script in tree.iter("script"))
    assert not tree.findall(".//style") and not tree.xpath("//@style")
    assert not [name for element in tree.iter() for name in element.attrib if name.lower().startswith("on")]


def test_every_asset_a_page_names_is_served_without_credentials(site: Site) -> None:
    page = html.fromstring(site.http("GET", "/").content)
    named = {*page.xpath("//script/@src"), *page.xpath("//link/@href"), *page.xpath("//img/@src")}
    css = assets.FILES["davgate.css"].body.decode()
    named |= {f"{assets.ASSETS}/{name}" for name in re.findall(r'url\("([^"]+)"\)', css)}
    assert len(named) >= 5
    for url in named:
        got = requests.get(site.url + url, timeout=10)  # no credentials
        assert got.status_code == 200, url
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        again = requests.get(site.url + url, headers={"If-None-Match": got.headers["ETag"]}, timeout=10)
        assert again.status_code == 304 and not again.content


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/.davgate/nothing.js", 404), ("GET", "/.davgate/davgate.js/x", 404), ("GET", "/.davgate", 404),
     ("PUT", "/.davgate/davgate.js", 405), ("DELETE", "/.davgate/davgate.css", 405)],
)  # fmt: skip
def test_the_assets_path_answers_nothing_else(site: Site, method: str, path: str, status: int) -> None:
    got = requests.request(method, site.url + path, data=b"x" if method == "PUT" else None, timeout=10)
    assert got.status_code == status and got.text.startswith(f"{status} ")


def test_a_folder_without_its_slash_is_redirected_to_it(site: Site) -> None:
    (site.base / "data" / "a b").mkdir(exist_ok=True)
    got = site.http("GET", "/data/a%20b", allow_redirects=False)
    assert got.status_code == 301 and got.headers["Location"] == "/data/a%20b/"
    assert site.http("GET", "/ro/readme.txt").text == "read only\n"  # files are not pages


def test_every_level_of_a_dispel_template_has_a_page(site: Site) -> None:
    """Down the tile pyramids' first folders: each level named from the template; no window form (no grid)."""
    path, depth = "/dispel/tiles/", 0
    while True:
        page = site.http("GET", path)
        assert page.status_code == 200, (path, page.text[-300:])
        tree = html.fromstring(page.content)
        assert tree.get_element_by_id("dispel-title").text_content() == "DISPEL template tiles"
        assert tree.xpath("//ol[@class='levels']/li[@aria-current='step']/code/text()") == [
            ["subject", "date", "layer", "z", "x", "y"][depth]
        ]
        assert not tree.xpath("//*[@id='window-form']")
        folders = tree.xpath("//tr[@data-kind='folder']/td/a/@href")
        if not folders:
            break
        path, depth = path + folders[0].removeprefix("./"), depth + 1
    assert depth == 5 and tree.xpath("//tr[@data-kind='file']/@data-name")[0] == "0.png"


def test_natural_order_and_sizes() -> None:
    words = ["layer 10", "Layer 2", "layer 1", "a", "layer 2b", "10", "9"]
    assert sorted(words, key=natural_key) == ["9", "10", "a", "layer 1", "Layer 2", "layer 2b", "layer 10"]
    assert [human_size(n) for n in (None, 0, 1, 1023, 1536, 100 * 1024**2, 5 * 1024**4)] == [
        "—", "0 bytes", "1 byte", "1023 bytes", "1.5 KiB", "100 MiB", "5.0 TiB",
    ]  # fmt: skip


def test_a_wheel_carries_the_pages_assets_and_templates(tmp_path: Path) -> None:
    """The Docker image installs davgate non-editable: the pages' files must be package data."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "davgate", source / "davgate", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("davgate-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    pages = REPO / "davgate" / "pages"
    wanted = {
        f"davgate/pages/{path.relative_to(pages)}"
        for folder in ("static", "templates")
        for path in (pages / folder).iterdir()
        if path.is_file()
    }
    assert "davgate/pages/static/davgate.js" in wanted and "davgate/pages/templates/folder.html" in wanted
    assert wanted <= packaged, wanted - packaged


def test_results_of_a_preview_that_takes_a_size_show_it_small_as_thumbnails(site: Site) -> None:
    # The shipped template has no thumbnail output: its .png, made small with ?size=, stands in.
    shipped = site.base / "templates" / "shipped.yaml"
    shipped.write_text((REPO / "conf" / "dispel" / "tiffstore.yaml").read_text())
    page = site.http("GET", "/dispel/shipped/312/20181129/0/")
    assert page.status_code == 200, page.text[-300:]
    sources = html.fromstring(page.content).xpath("//tr[@data-kind='file']//img[@class='thumb']/@src")
    assert sources and all(src.endswith(".png?size=80") for src in sources)
    thumb = site.http("GET", "/dispel/shipped/312/20181129/0/" + sources[0].removeprefix("./"))
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/png"
    width, height = struct.unpack(">II", thumb.content[16:24])
    assert max(width, height) == 80
