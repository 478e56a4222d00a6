"""The query service: an index kept by davgate's own writes and a bounded rescan, in the seed's shape."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from davgate.api.query import http_date
from davgate.state import IndexEntry
from tests.api.conftest import Api, basic, infrastructure, volume_of
from tests.helpers import wait_until

DAV = basic("user", "s3cret-pass")


@pytest.fixture
def owner(api: Api) -> str:
    token = api.register("owner@example.org")
    assert api.call("POST", "/infrastructure", infrastructure(), token=token).status == 201
    return token


def found(api: Api, token: str, name: str) -> list[str]:
    return [f"{e['location']['name']}:{e['filename']}" for e in api.call("GET", f"/find/{name}", token=token).json]


def test_own_writes_are_indexed_at_once(api: Api, owner: str) -> None:
    api.dav("MKCOL", "/test-001/mynativestorage/UC1", DAV)
    api.dav("PUT", "/test-001/mynativestorage/UC1/sample_script.py", DAV, b"print('hi')\n")
    api.dav("PUT", "/test-001/other/sample_script.py", DAV, b"x")
    assert found(api, owner, "sample_script.py") == ["mynativestorage:/UC1/sample_script.py", "other:/sample_script.py"]
    entry = api.call("GET", "/find/sample_script.py", token=owner).json[0]
    assert entry == {
        "filename": "/UC1/sample_script.py", "basename": "sample_script.py", "lastmod": entry["lastmod"], "size": 12,
        "type": "file", "mime": "text/x-python",
        "location": {"name": "mynativestorage", "infrastructure": "test-001", "host": "127.0.0.1", "port": 8080,
                     "type": "webdav", "mount": "pv-001",
                     "url": "http://127.0.0.1:8080/test-001/mynativestorage/UC1/sample_script.py"},
    }  # fmt: skip
    assert entry["lastmod"].endswith(" +0000")
    api.dav("MOVE", "/test-001/mynativestorage/UC1", DAV, Destination="http://127.0.0.1:8080/test-001/other/UC2")
    assert found(api, owner, "sample_script.py") == ["other:/UC2/sample_script.py", "other:/sample_script.py"]
    api.dav("DELETE", "/test-001/other/sample_script.py", DAV)
    assert found(api, owner, "sample_script.py") == ["other:/UC2/sample_script.py"]


def test_list_groups_by_base_name(api: Api, owner: str) -> None:
    for path in ("/test-001/mynativestorage/a.txt", "/test-001/other/a.txt", "/test-001/other/b.bin"):
        api.dav("PUT", path, DAV, b"1")
    listed = api.call("GET", "/list", token=owner).json
    assert sorted(listed) == ["a.txt", "b.bin"]
    assert [e["location"]["name"] for e in listed["a.txt"]] == ["mynativestorage", "other"]
    assert api.call("GET", "/list?infrastructure=test-001", token=owner).json == listed
    assert api.call("GET", "/list?infrastructure=nope", token=owner).status == 404
    stranger = api.register("stranger@example.org")
    assert api.call("GET", "/list", token=stranger).json == {}


def test_changes_behind_davgates_back_are_found_by_the_rescan(api: Api, owner: str, tmp_path: Path) -> None:
    volume = volume_of(api, tmp_path, "test-001", "mynativestorage")
    (volume / "deep" / "er").mkdir(parents=True)
    (volume / "deep" / "er" / "hidden.dat").write_bytes(b"12345")
    wait_until(lambda: found(api, owner, "hidden.dat") == ["mynativestorage:/deep/er/hidden.dat"], timeout=10)
    os.remove(volume / "deep" / "er" / "hidden.dat")
    wait_until(lambda: found(api, owner, "hidden.dat") == [], timeout=10)


def test_no_query_container_no_index(api: Api, owner: str) -> None:
    assert api.call("POST", "/infrastructure", infrastructure("plain", query=False), token=owner).status == 201
    api.dav("PUT", "/plain/mynativestorage/p.txt", DAV, b"1")
    assert found(api, owner, "p.txt") == []
    assert not any(
        e["type"] == "query" for e in api.call("GET", "/infrastructure/plain", token=owner).json["endpoints"]
    )


def test_a_rescan_pass_lists_at_most_rate_folders_per_adaptor(make_api: Callable[..., Api], tmp_path: Path) -> None:
    api = make_api(rescan_rate=3, rescan_interval=3600)
    service = api.app.api
    service.rescanner.stop()  # passes are run by hand here
    token = api.register("owner@example.org")
    assert api.call("POST", "/infrastructure", infrastructure(), token=token).status == 201
    volume = volume_of(api, tmp_path, "test-001", "mynativestorage")
    for i in range(7):
        (volume / f"f{i}").mkdir()
        (volume / f"f{i}" / "x.txt").write_bytes(b"x")
    counts = []
    for _ in range(5):
        counts.append(service.index.rescan(now=time.time()))
    assert counts == [2, 3, 3, 1, 0]  # both roots; then the seven folders found there, three per pass
    assert len(found(api, token, "x.txt")) == 7


def test_a_folder_that_vanished_is_dropped(make_api: Callable[..., Api]) -> None:
    api = make_api()
    store, index = api.app.store, api.app.api.index
    api.app.api.rescanner.stop()
    token = api.register("owner@example.org")
    api.call("POST", "/infrastructure", infrastructure(), token=token)
    store.index_put(
        [IndexEntry("test-001", "other", "/ghost", True), IndexEntry("test-001", "other", "/ghost/g.txt", False)]
    )
    index.rescan(now=1e10)
    assert found(api, token, "g.txt") == []


def test_http_date() -> None:
    assert http_date(1546022830) == "Fri, 28 Dec 2018 18:47:10 +0000"
