"""Properties real clients need, in-process: oc:permissions, PROPPATCH of the modification time."""

from __future__ import annotations

import os

import pytest
from lxml import etree

from tests.wsgi.client import Client

OC = "http://owncloud.org/ns"
ASK_PERMISSIONS = b"""<?xml version="1.0"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>
<oc:permissions/><d:getlastmodified/><d:getetag/></d:prop></d:propfind>"""


def proppatch_body(name: str, value: str, namespace: str = "DAV:") -> bytes:
    return (
        f'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="{namespace}">'
        f"<d:set><d:prop><x:{name}>{value}</x:{name}></d:prop></d:set></d:propertyupdate>"
    ).encode()


def statuses(body: bytes) -> dict[str, str]:
    """{property name (Clark): status line} of a one-resource multistatus."""
    found = {}
    for propstat in etree.fromstring(body).iter("{DAV:}propstat"):
        status = propstat.findtext("{DAV:}status")
        for prop in propstat.find("{DAV:}prop"):
            found[prop.tag] = status
    return found


def permissions(client: Client, path: str) -> dict[str, str]:
    answer = client.request("PROPFIND", path, ASK_PERMISSIONS, {"Depth": "1"})
    assert answer.status == 207, answer.text
    found = {}
    for response in etree.fromstring(answer.body).iter("{DAV:}response"):
        found[response.findtext("{DAV:}href")] = response.findtext(f".//{{{OC}}}permissions")
    return found


@pytest.fixture
def client(make_app) -> Client:
    return Client(make_app())


def test_oc_permissions_of_files_folders_roots(client: Client) -> None:
    client.put("/data/f.txt", b"x")
    client.request("MKCOL", "/data/sub")
    assert permissions(client, "/data/") == {"/data/": "RGCK", "/data/f.txt": "RGDNVW", "/data/sub/": "RGDNVCK"}
    assert permissions(client, "/")["/"] == "RG"
    assert set(permissions(client, "/projects/").values()) == {"RG", "RGCK"}


def test_oc_permissions_follow_read_only_mounts_and_access_rules(make_app, mount_root) -> None:
    for path in ("/archive", "/projects/a"):
        mount_root(path).mkdir(parents=True, exist_ok=True)
        (mount_root(path) / "f.txt").write_text("x")
    app = make_app(
        mounts={
            "/archive": {"type": "local", "root": str(mount_root("/archive")), "readonly": True},
            "/projects/a": {
                "type": "local",
                "root": str(mount_root("/projects/a")),
                "access": {"read": ["*"], "write": ["bob"]},
            },
        }
    )
    alice, bob = Client(app, "alice"), Client(app, "bob")
    assert set(permissions(alice, "/archive/").values()) == {"RG"}
    assert set(permissions(alice, "/projects/a/").values()) == {"RG"}
    assert permissions(bob, "/projects/a/") == {"/projects/a/": "RGCK", "/projects/a/f.txt": "RGDNVW"}


def test_oc_permissions_are_not_in_allprop(client: Client) -> None:
    client.put("/data/f.txt", b"x")
    allprop = client.request(
        "PROPFIND", "/data/f.txt", b'<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>', {"Depth": "0"}
    )
    assert b"getetag" in allprop.body and b"owncloud.org" not in allprop.body


@pytest.mark.parametrize(
    ("name", "namespace", "value"),
    [
        ("lastmodified", "DAV:", "1500000000"),  # NextCloud
        ("getlastmodified", "DAV:", "Fri, 14 Jul 2017 02:40:00 GMT"),
        ("Win32LastModifiedTime", "urn:schemas-microsoft-com:", "Fri, 14 Jul 2017 02:40:00 GMT"),
    ],
)
def test_proppatch_sets_the_modification_time(
    client: Client, mount_root, name: str, namespace: str, value: str
) -> None:
    client.put("/data/f.txt", b"x")
    answer = client.request("PROPPATCH", "/data/f.txt", proppatch_body(name, value, namespace))
    assert answer.status == 207
    assert set(statuses(answer.body).values()) == {"HTTP/1.1 200 OK"}, answer.text
    assert os.stat(mount_root("/data") / "f.txt").st_mtime == 1500000000
    shown = client.request("PROPFIND", "/data/f.txt", ASK_PERMISSIONS, {"Depth": "0"})
    assert b"Fri, 14 Jul 2017 02:40:00 GMT" in shown.body


def test_proppatch_of_a_folder_time(client: Client, mount_root) -> None:
    client.request("MKCOL", "/data/sub")
    answer = client.request("PROPPATCH", "/data/sub", proppatch_body("lastmodified", "1500000000"))
    assert set(statuses(answer.body).values()) == {"HTTP/1.1 200 OK"}
    assert os.stat(mount_root("/data") / "sub").st_mtime == 1500000000


def test_a_bad_time_is_a_conflict_and_nothing_else_changes(client: Client) -> None:
    client.put("/data/f.txt", b"x")
    body = (
        b'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:t"><d:set><d:prop>'
        b"<d:lastmodified>yesterday</d:lastmodified><x:color>red</x:color></d:prop></d:set></d:propertyupdate>"
    )
    answer = statuses(client.request("PROPPATCH", "/data/f.txt", body).body)
    assert answer == {"{DAV:}lastmodified": "HTTP/1.1 409 Conflict", "{urn:t}color": "HTTP/1.1 424 Failed Dependency"}


def test_time_on_a_read_only_mount_is_forbidden(make_app, mount_root) -> None:
    mount_root("/archive").mkdir(parents=True)
    (mount_root("/archive") / "f.txt").write_text("x")
    client = Client(
        make_app(mounts={"/archive": {"type": "local", "root": str(mount_root("/archive")), "readonly": True}})
    )
    answer = client.request("PROPPATCH", "/archive/f.txt", proppatch_body("lastmodified", "1500000000"))
    assert answer.status == 403 or set(statuses(answer.body).values()) == {"HTTP/1.1 403 Forbidden"}


def test_proppatch_with_depth_1_acts_on_the_resource(client: Client) -> None:
    """webdavclient3's set_property sends Depth: 1; RFC 4918 gives PROPPATCH no Depth."""
    client.put("/data/f.txt", b"x")
    answer = client.request("PROPPATCH", "/data/f.txt", proppatch_body("color", "red", "urn:t"), {"Depth": "1"})
    assert answer.status == 207 and set(statuses(answer.body).values()) == {"HTTP/1.1 200 OK"}
    assert (
        b"red"
        in client.request(
            "PROPFIND", "/data/f.txt", b'<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>', {"Depth": "0"}
        ).body
    )


def test_the_recorded_time_is_protected(client: Client) -> None:
    client.put("/data/f.txt", b"x")
    answer = client.request("PROPPATCH", "/data/f.txt", proppatch_body("lastmodified", "1", "urn:x-davgate:"))
    assert set(statuses(answer.body).values()) == {"HTTP/1.1 403 Forbidden"}
