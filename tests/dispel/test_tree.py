"""The browsable tree, in-process: PROPFIND at every level, computed from listings and headers only."""

from __future__ import annotations

import re

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


def test_listing_runs_nothing_and_shows_sizes_once_cached(dispel: Dispel) -> None:
    folder = f"{BASE}/312/20181129/1/"
    listing = dispel.client.propfind(folder, depth="1").text
    assert dispel.executions() == 0
    assert "<D:getcontentlength>" not in listing
    assert "<D:getetag>" in listing and "image/tiff" in listing and "image/png" in listing
    body = dispel.get(f"{folder}0-128-0-128.tif").body
    listing = dispel.client.propfind(folder, depth="1").text
    assert f"<D:getcontentlength>{len(body)}</D:getcontentlength>" in listing
    assert dispel.executions() == 1


def test_a_single_result_can_be_propfound(dispel: Dispel) -> None:
    response = dispel.client.propfind(f"{BASE}/312/20181129/1/5-17-3-9", depth="0")
    assert response.status == 207 and "<D:collection/>" not in response.text
    assert dispel.executions() == 0


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
