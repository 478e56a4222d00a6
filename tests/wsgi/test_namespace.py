"""The federated namespace: mounts listed at /, writes above mounts refused, COPY/MOVE across mounts."""

from __future__ import annotations

import re

from tests.wsgi.client import Client


def hrefs(body: bytes) -> list[str]:
    return sorted(re.findall(r"<D:href>([^<]*)</D:href>", body.decode()))


def test_propfind_root_depth_0_is_one_collection(client: Client) -> None:
    response = client.propfind("/", depth="0")
    assert response.status == 207
    assert hrefs(response.body) == ["/"]
    assert b"<D:collection/>" in response.body


def test_propfind_root_depth_1_lists_mounts_as_collections(client: Client) -> None:
    response = client.propfind("/", depth="1")
    assert response.status == 207
    assert hrefs(response.body) == ["/", "/archive/", "/data/", "/projects/"]
    assert response.body.count(b"<D:collection/>") == 4


def test_nested_mounts_appear_under_a_virtual_folder(client: Client) -> None:
    response = client.propfind("/projects/", depth="1")
    assert hrefs(response.body) == ["/projects/", "/projects/a/", "/projects/b/"]


def test_html_listing_of_root_shows_mounts(client: Client) -> None:
    response = client.get("/")
    assert response.status == 200
    for name in ("data", "archive", "projects"):
        assert f'href="./{name}/"' in response.text


def test_unknown_top_level_path_is_404(client: Client) -> None:
    assert client.propfind("/nowhere", depth="0").status == 404
    assert client.get("/nowhere/file").status == 404


def test_writes_to_root_are_refused_cleanly(client: Client) -> None:
    assert client.put("/file.txt", b"x").status == 403
    assert client.request("MKCOL", "/newmount").status == 403
    assert client.request("DELETE", "/data").status == 403
    move = client.request("MOVE", "/data", headers={"Destination": "http://127.0.0.1/moved"})
    assert move.status in (403, 409)
    assert client.propfind("/data", depth="0").status == 207


def test_put_into_virtual_folder_is_refused(client: Client) -> None:
    assert client.put("/projects/x.txt", b"x").status == 403


def test_copy_between_mounts_streams_the_file(client: Client, mount_root) -> None:
    assert client.put("/data/report.txt", b"federated").status == 201
    copy = client.request("COPY", "/data/report.txt", headers={"Destination": "http://127.0.0.1/archive/report.txt"})
    assert copy.status == 201
    assert (mount_root("/archive") / "report.txt").read_bytes() == b"federated"
    assert (mount_root("/data") / "report.txt").exists()


def test_move_between_mounts_removes_the_source(client: Client, mount_root) -> None:
    client.request("MKCOL", "/data/dir")
    client.put("/data/dir/a.bin", b"a" * 1000)
    move = client.request("MOVE", "/data/dir", headers={"Destination": "http://127.0.0.1/projects/a/dir"})
    assert move.status == 201
    assert (mount_root("/projects/a") / "dir" / "a.bin").read_bytes() == b"a" * 1000
    assert not (mount_root("/data") / "dir").exists()


def test_dead_properties_follow_a_move_across_mounts(client: Client) -> None:
    client.put("/data/p.txt", b"p")
    patch = (
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
        b"<D:set><D:prop><Z:color>red</Z:color></D:prop></D:set></D:propertyupdate>"
    )
    assert client.request("PROPPATCH", "/data/p.txt", patch).status == 207
    client.request("MOVE", "/data/p.txt", headers={"Destination": "http://127.0.0.1/archive/p.txt"})
    find = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:color/></D:prop></D:propfind>'
    response = client.propfind("/archive/p.txt", depth="0", body=find)
    assert b"red" in response.body


def test_copy_to_a_path_outside_every_mount_is_refused(client: Client) -> None:
    client.put("/data/x.txt", b"x")
    copy = client.request("COPY", "/data/x.txt", headers={"Destination": "http://127.0.0.1/elsewhere/x.txt"})
    assert copy.status in (403, 409)


def test_traversal_segments_are_refused(client: Client) -> None:
    assert client.get("/data/../../etc/passwd").status in (400, 403, 404)
    assert client.get("/data/a\\..\\b").status == 400


def test_deleting_a_folder_forgets_the_properties_below_it(client: Client) -> None:
    client.request("MKCOL", "/data/dir")
    client.put("/data/dir/p.txt", b"p")
    patch = (
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
        b"<D:set><D:prop><Z:color>red</Z:color></D:prop></D:set></D:propertyupdate>"
    )
    client.request("PROPPATCH", "/data/dir/p.txt", patch)
    assert client.request("DELETE", "/data/dir").status == 204
    client.request("MKCOL", "/data/dir")
    client.put("/data/dir/p.txt", b"new")
    find = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:color/></D:prop></D:propfind>'
    assert b"red" not in client.propfind("/data/dir/p.txt", depth="0", body=find).body
