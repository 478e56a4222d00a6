"""HTTP behaviour every mount shares: ETags, Range, conditional requests, anonymous policy."""

from __future__ import annotations

import pytest

from tests.wsgi.client import Client, basic


@pytest.fixture
def stored(client: Client) -> Client:
    assert client.put("/data/f.bin", bytes(range(256)) * 4).status == 201
    return client


def test_etag_is_strong_and_changes_with_content(stored: Client) -> None:
    first = stored.get("/data/f.bin").headers["etag"]
    assert first.startswith('"') and not first.startswith("W/")
    assert stored.get("/data/f.bin").headers["etag"] == first
    stored.put("/data/f.bin", b"changed")
    assert stored.get("/data/f.bin").headers["etag"] != first


def test_collection_etag_changes_when_members_change(stored: Client) -> None:
    def folder_etag() -> bytes:
        body = stored.propfind("/data/", depth="0").body
        return body.split(b"<D:getetag>")[1].split(b"</D:getetag>")[0]

    before = folder_etag()
    stored.put("/data/new.txt", b"n")
    assert folder_etag() != before


def test_range_requests(stored: Client) -> None:
    whole = bytes(range(256)) * 4
    partial = stored.request("GET", "/data/f.bin", headers={"Range": "bytes=10-19"})
    assert partial.status == 206
    assert partial.body == whole[10:20]
    assert partial.headers["content-range"] == "bytes 10-19/1024"
    suffix = stored.request("GET", "/data/f.bin", headers={"Range": "bytes=-5"})
    assert suffix.body == whole[-5:]


def test_if_none_match_gives_304(stored: Client) -> None:
    etag = stored.get("/data/f.bin").headers["etag"]
    assert stored.request("GET", "/data/f.bin", headers={"If-None-Match": etag}).status == 304


def test_if_match_mismatch_refuses_put(stored: Client) -> None:
    response = stored.request("PUT", "/data/f.bin", b"x", {"If-Match": '"not-the-etag"'})
    assert response.status == 412
    assert stored.get("/data/f.bin").body == bytes(range(256)) * 4


def test_anonymous_none_requires_credentials(make_app) -> None:
    anonymous = Client(make_app(), user=None)
    response = anonymous.get("/data/")
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_anonymous_read_allows_reading_only(make_app) -> None:
    app = make_app(auth={"anonymous": "read"})
    Client(app).put("/data/r.txt", b"r")
    anonymous = Client(app, user=None)
    assert anonymous.get("/data/r.txt").body == b"r"
    assert anonymous.propfind("/data/", depth="1").status == 207
    assert anonymous.put("/data/w.txt", b"w").status == 401
    assert anonymous.request("DELETE", "/data/r.txt").status == 401


def test_anonymous_write_allows_writing(make_app) -> None:
    anonymous = Client(make_app(auth={"anonymous": "write"}), user=None)
    assert anonymous.put("/data/w.txt", b"w").status == 201


def test_sent_credentials_are_checked_even_when_anonymous_may_read(make_app) -> None:
    client = Client(make_app(auth={"anonymous": "read"}), user=None)
    response = client.request("GET", "/data/", headers={"Authorization": basic("alice", "wrong")})
    assert response.status == 401


def test_readonly_mount_refuses_writes(make_app, mount_root) -> None:
    app = make_app(mounts={"/data": {"type": "local", "root": str(mount_root("/data")), "readonly": True}})
    client = Client(app)
    assert client.put("/data/x.txt", b"x").status == 403
    assert client.request("MKCOL", "/data/d").status == 403
    assert not (mount_root("/data") / "x.txt").exists()
