"""The browsable tree, in-process: PROPFIND at every level, computed from listings and headers only."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from tests.dispel.conftest import Dispel

BASE = "/dispel/tiffstore"


def hrefs(dispel: Dispel, path: str, depth: str = "1") -> list[str]:
    response = dispel.client.propfind(path, depth=depth)
    assert response.status == 207, response.text
    return re.findall(r"<D:href>([^<]*)</D:href>", response.text)


def members(dispel: Dispel, path: str) -> list[str]:
    return [h[len(path) :] for h in hrefs(dispel, path)[1:]]


def test_root_lists_the_templates(dispel: Dispel) -> None:
    assert members(dispel, "/dispel/") == ["tiffstore/"]
    assert "/dispel/" in hrefs(dispel, "/", depth="1")


def test_template_lists_subjects_that_exist(dispel: Dispel) -> None:
    assert members(dispel, f"{BASE}/") == ["312/", "313/", "0400/"]  # not "abc": not digits


def test_subject_lists_its_dates(dispel: Dispel) -> None:
    assert members(dispel, f"{BASE}/312/") == ["20181129/", "20190306/"]  # not notes.txt nor 2019-01-01.tif


def test_date_lists_the_layers_from_the_header(dispel: Dispel) -> None:
    assert members(dispel, f"{BASE}/312/20181129/") == [f"{i}/" for i in range(5)]
    assert members(dispel, f"{BASE}/313/20181201/") == ["0/", "1/"]


def test_layer_lists_a_tiling_of_windows_with_previews(dispel: Dispel) -> None:
    windows = ["0-128-0-128", "128-256-0-128", "256-300-0-128", "0-128-128-200", "128-256-128-200", "256-300-128-200"]
    assert members(dispel, f"{BASE}/312/20181129/4/") == [f"{w}.{ext}" for w in windows for ext in ("tif", "png")]


def test_the_tiling_is_configurable(make_dispel) -> None:
    dispel = make_dispel(tile_size=1000)
    assert members(dispel, f"{BASE}/312/20181129/0/") == ["0-300-0-200.tif", "0-300-0-200.png"]


def sizes_listed(dispel: Dispel, folder: str) -> dict[str, str | None]:
    tree = ElementTree.fromstring(dispel.client.propfind(folder, depth="1").body)
    return {
        response.findtext("{DAV:}href").rsplit("/", 1)[-1]: response.findtext(".//{DAV:}getcontentlength")
        for response in tree.iter("{DAV:}response")
        if not response.findtext("{DAV:}href").endswith("/")
    }


def test_listing_runs_nothing_and_shows_sizes_known_before_or_cached(dispel: Dispel) -> None:
    folder = f"{BASE}/312/20181129/1/"
    listed = sizes_listed(dispel, folder)
    assert dispel.executions() == 0
    assert listed["0-128-0-128.png"] is None  # a preview's size is known once it is made
    body = dispel.get(f"{folder}0-128-0-128.tif").body
    assert listed["0-128-0-128.tif"] == str(len(body))  # a window as .tif: known before it is made
    dispel.get(f"{folder}0-128-0-128.png")
    png = sizes_listed(dispel, folder)["0-128-0-128.png"]
    assert png == str(len(dispel.get(f"{folder}0-128-0-128.png").body))
    assert dispel.executions() == 2


def test_the_propfind_of_one_result_makes_it_once_for_its_exact_size(dispel: Dispel) -> None:
    # What davfs2, rclone mount, Windows and Finder ask before they read a file whose size they trust.
    path = f"{BASE}/312/20181129/1/5-17-3-9.png"
    sizes = set()
    for _ in range(2):
        response = dispel.client.propfind(path, depth="0")
        assert response.status == 207 and "<D:collection/>" not in response.text
        sizes.add(ElementTree.fromstring(response.body).findtext(".//{DAV:}getcontentlength"))
    assert sizes == {str(len(dispel.get(path).body))}
    assert dispel.executions() == 1


def test_folders_that_do_not_exist(dispel: Dispel) -> None:
    assert dispel.client.propfind(f"{BASE}/999/", depth="0").status == 404
    assert dispel.client.propfind(f"{BASE}/312/20200101/", depth="0").status == 404
    assert dispel.client.propfind(f"{BASE}/312/20181129/5/", depth="0").status == 400  # pages 0-4
    assert dispel.client.propfind("/dispel/nothing/", depth="0").status == 404


def test_a_template_folder_exists_before_its_input_folder(dispel: Dispel) -> None:
    (dispel.templates / "other.yaml").write_text(
        (dispel.templates / "tiffstore.yaml").read_text().replace("path: tiffstore/", "path: elsewhere/")
    )
    assert members(dispel, "/dispel/") == ["other/", "tiffstore/"]
    assert members(dispel, "/dispel/other/") == []


def test_html_listing(dispel: Dispel) -> None:
    response = dispel.get(f"{BASE}/312/20181129/2/")
    assert response.status == 200
    assert 'href="./0-128-0-128.png"' in response.text and 'href="./0-128-0-128.tif"' in response.text
    assert dispel.executions() == 0


def test_folder_etags_change_with_their_source(dispel: Dispel) -> None:
    def etag() -> str:
        return re.search(r"<D:getetag>([^<]*)<", dispel.client.propfind(f"{BASE}/312/", depth="0").text).group(1)

    before = etag()
    (dispel.store.root / "tiffstore/312/20200101.tif").write_bytes(b"")
    assert etag() != before
