"""DISPEL under its source mount's rules, on a real davgate: results, cached results and listings.

``/secret`` is readable by alice only and ``/dispel`` reads from it; ``/dispel``
itself has no rules. Bob must get from ``/dispel`` nothing he could not read
from ``/secret``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.dispel.conftest import TIFFSTORE, stack, write_stack
from tests.helpers import USERS, Server, ServerLauncher

ALICE = ("alice", USERS["alice"])
BOB = ("bob", USERS["bob"])
RESULT = "/dispel/tiffstore/312/20181129/1/0-10-0-10"
LISTINGS = ("/dispel/tiffstore/", "/dispel/tiffstore/312/", "/dispel/tiffstore/312/20181129/1/")


@pytest.fixture
def server(serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path) -> Server:
    templates, source = tmp_path / "templates", tmp_path / "secret"
    templates.mkdir()
    (templates / "tiffstore.yaml").write_text(TIFFSTORE.read_text())
    write_stack(source / "tiffstore/312/20181129.tif", stack(1, 3, 200, 300), tile=(64, 64))
    (tmp_path / "data").mkdir()
    return serve(
        {
            "auth": {"htpasswd": htpasswd_file},
            "mounts": {
                "/secret": {"type": "local", "root": source, "readonly": True, "access": {"read": ["alice"]}},
                "/dispel": {"type": "dispel", "templates": templates, "source": "/secret", "workers": 1},
                "/data": {"type": "local", "root": tmp_path / "data"},
            },
            "state": {"type": "sqlite", "path": tmp_path / "state.db"},
            "cache": {"type": "local", "root": tmp_path / "cache"},
            "server": {"propfind_depth_infinity": True},
        }
    )


def call(server: Server, method: str, path: str, auth: tuple[str, str], **headers: str) -> requests.Response:
    return requests.request(method, server.url + path, auth=auth, headers=headers, timeout=60)


def test_a_result_needs_read_access_to_the_source_cached_or_not(server: Server) -> None:
    assert call(server, "GET", "/secret/tiffstore/312/20181129.tif", BOB).status_code == 403  # the rule itself
    refused = call(server, "GET", RESULT, BOB)
    assert refused.status_code == 403
    assert not refused.content.startswith(b"II*")
    assert call(server, "HEAD", RESULT, BOB).status_code == 403
    made = call(server, "GET", RESULT, ALICE)
    assert made.status_code == 200, made.text
    assert made.content[:4] == b"II*\x00"  # a TIFF, now in the cache
    for method in ("GET", "HEAD"):
        assert call(server, method, RESULT, BOB).status_code == 403  # a cache hit is no way round the rule
    assert call(server, "PROPFIND", RESULT, BOB, Depth="0").status_code == 403  # nor the cache entry's properties
    copy = call(server, "COPY", RESULT, BOB, Destination=server.url + "/data/stolen.tif")
    assert copy.status_code == 403
    assert call(server, "GET", "/data/stolen.tif", BOB).status_code == 404


def test_listings_of_a_template_need_read_access_to_the_source(server: Server) -> None:
    assert "20181129" in call(server, "PROPFIND", "/dispel/tiffstore/312/", ALICE, Depth="1").text
    for path in LISTINGS:
        assert call(server, "PROPFIND", path, ALICE, Depth="1").status_code == 207, path
        refused = call(server, "PROPFIND", path, BOB, Depth="1")
        assert refused.status_code == 403, path
        assert "multistatus" not in refused.text
        assert call(server, "GET", path, BOB).status_code == 403, path  # the HTML listing too
    assert call(server, "PROPFIND", "/dispel/tiffstore/0-bad-parameter/", BOB, Depth="1").status_code == 403


def test_the_template_list_shows_only_templates_whose_source_the_user_may_read(server: Server) -> None:
    mine = call(server, "PROPFIND", "/dispel/", ALICE, Depth="1")
    assert mine.status_code == 207 and "/dispel/tiffstore/" in mine.text
    theirs = call(server, "PROPFIND", "/dispel/", BOB, Depth="1")
    assert theirs.status_code == 207 and "tiffstore" not in theirs.text
    deep = call(server, "PROPFIND", "/dispel/", BOB, Depth="infinity")
    assert deep.status_code == 207 and "tiffstore" not in deep.text and "20181129" not in deep.text
    assert "tiffstore" not in call(server, "GET", "/dispel/", BOB).text
