"""PROPFIND answered in one pass (davgate.propfind) reads the same as WsgiDAV's own answer.

Each request is sent twice to the same app and data: once as served, once
with davgate's fast path switched off (WsgiDAV's do_PROPFIND). The answers
are compared property by property, whatever the prefixes and order.
"""

from __future__ import annotations

import os
import re

import pytest
from lxml import etree
from wsgidav.dav_provider import DAVProvider

from davgate.namespace import Namespace
from tests.wsgi.client import Client

PROPS = {
    "allprop": b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>',
    "empty body": b"",
    "four": b'<d:propfind xmlns:d="DAV:"><d:prop><d:getcontentlength/><d:getlastmodified/>'
    b"<d:resourcetype/><d:getetag/></d:prop></d:propfind>",
    "nextcloud": b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/>'
    b"<d:getlastmodified/><d:getcontentlength/><d:getcontenttype/><d:resourcetype/>"
    b"<d:quota-available-bytes/><d:quota-used-bytes/><oc:permissions/></d:prop></d:propfind>",
    "unknown and dead": b'<propfind xmlns="DAV:"><prop><nothing/><displayname/><creationdate/>'
    b'<x:colour xmlns:x="urn:x"/><x:missing xmlns:x="urn:x"/><y:z xmlns:y="urn:y"/></prop></propfind>',
    "locks": b'<d:propfind xmlns:d="DAV:"><d:prop><d:lockdiscovery/><d:supportedlock/></d:prop></d:propfind>',
}
LOCK = b"""<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>
<d:locktype><d:write/></d:locktype><d:owner><d:href>mailto:alice@example.org</d:href></d:owner></d:lockinfo>"""


def proppatch(name: str, value: str) -> bytes:
    return (
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x">'
        f"<d:set><d:prop><x:{name}>{value}</x:{name}></d:prop></d:set></d:propertyupdate>"
    ).encode()


@pytest.fixture
def client(make_app, mount_root) -> Client:
    root = mount_root("/data")
    (root / "sub" / "deeper").mkdir(parents=True)
    for name in ("a.txt", "b.tiff", "no-extension", "ü & <markup>.csv", "sub/c.json"):
        (root / name).write_bytes(b"x" * len(name))
    os.utime(root / "a.txt", (1_600_000_000, 1_600_000_000))
    client = Client(make_app())
    for path, value in (
        ("/data/a.txt", "red"),
        ("/data/sub/", "<x:nested>blue &amp; green</x:nested>"),
        ("/data/sub/c.json", "deep"),
    ):
        assert client.request("PROPPATCH", path, proppatch("colour", value)).status == 207
    assert client.request("PROPPATCH", "/data/b.tiff", proppatch("size", "large")).status == 207
    assert client.request("LOCK", "/data/a.txt", LOCK, {"Timeout": "Second-3600"}).status == 200
    assert client.request("LOCK", "/data/sub/", LOCK, {"Depth": "infinity", "Timeout": "Infinite"}).status == 200
    return client


def answers(client: Client, monkeypatch, path: str, body: bytes, depth: str) -> tuple[dict, dict]:
    fast = client.request("PROPFIND", path, body, {"Depth": depth})
    with monkeypatch.context() as patch:
        patch.setattr(Namespace, "custom_request_handler", DAVProvider.custom_request_handler)
        stock = client.request("PROPFIND", path, body, {"Depth": depth})
    assert fast.status == stock.status == 207, (fast.text, stock.text)
    assert int(fast.headers["content-length"]) == len(fast.body)
    return parsed(fast.body), parsed(stock.body)


def parsed(body: bytes) -> dict[str, dict[str, tuple[str, str]]]:
    """{href: {property: (status, canonical value)}}."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for response in etree.fromstring(body).iter("{DAV:}response"):
        props = found.setdefault(response.findtext("{DAV:}href"), {})
        for propstat in response.iter("{DAV:}propstat"):
            status = propstat.findtext("{DAV:}status")
            for prop in propstat.find("{DAV:}prop"):
                props[prop.tag] = (status, canonical(prop))
    return found


def differences(fast: dict, stock: dict) -> list[tuple]:
    """(href, property, fast's, WsgiDAV's) wherever the two answers differ."""
    found = [(href, None, href in fast, href in stock) for href in set(fast) ^ set(stock)]
    for href in set(fast) & set(stock):
        for name in set(fast[href]) | set(stock[href]):
            if fast[href].get(name) != stock[href].get(name):
                found.append((href, name, fast[href].get(name), stock[href].get(name)))
    return sorted(found, key=str)


def canonical(element) -> str:
    """Tags in Clark notation, text stripped; what changes between two calls (lock seconds left, free space) blurred."""
    inner = "".join(canonical(child) for child in element)
    text = re.sub(r"^Second-\d+$", "Second-N", (element.text or "").strip())
    if element.tag.startswith("{DAV:}quota-"):
        text = re.sub(r"^\d+$", "N", text)
    return f"<{element.tag}>{text}{inner}</{element.tag}>"


@pytest.mark.parametrize("path", ["/data/", "/data/sub/", "/data/a.txt", "/data/sub/c.json"])
@pytest.mark.parametrize("depth", ["0", "1"])
@pytest.mark.parametrize("kind", list(PROPS))
def test_answers_match_wsgidav(client: Client, monkeypatch, path: str, depth: str, kind: str) -> None:
    fast, stock = answers(client, monkeypatch, path, PROPS[kind], depth)
    assert differences(fast, stock) == []
    if kind == "allprop" and path == "/data/" and depth == "1":
        assert len(fast) == 6 and fast["/data/a.txt"]["{urn:x}colour"][1] == "<{urn:x}colour>red</{urn:x}colour>"


def test_a_recorded_modification_time_is_read_from_the_listing(client: Client, monkeypatch, mount_root) -> None:
    # local mounts set file times; strip that ability to exercise the recorded time (as on s3)
    patch = {"{DAV:}lastmodified": "1500000000"}
    body = proppatch("ignored", "x").replace(b"urn:x", b"DAV:").replace(b"ignored", b"lastmodified")
    body = body.replace(b">x<", f">{patch['{DAV:}lastmodified']}<".encode())
    assert client.request("PROPPATCH", "/data/no-extension", body).status == 207
    fast, stock = answers(client, monkeypatch, "/data/", PROPS["four"], "1")
    assert differences(fast, stock) == []
    assert "2017" in fast["/data/no-extension"]["{DAV:}getlastmodified"][1]


def test_propname_lists_names_without_values(client: Client) -> None:
    answer = client.request(
        "PROPFIND", "/data/", b'<d:propfind xmlns:d="DAV:"><d:propname/></d:propfind>', {"Depth": "1"}
    )
    found = parsed(answer.body)
    assert found["/data/a.txt"]["{urn:x}colour"] == ("HTTP/1.1 200 OK", "<{urn:x}colour></{urn:x}colour>")
    assert {"{DAV:}getetag", "{DAV:}lockdiscovery", "{http://owncloud.org/ns}permissions"} <= set(found["/data/a.txt"])
    assert "{DAV:}quota-available-bytes" in found["/data/sub/"]


def test_include_adds_to_allprop(client: Client) -> None:
    body = b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:allprop/><d:include><oc:permissions/><oc:nope/></d:include></d:propfind>'
    found = parsed(client.request("PROPFIND", "/data/a.txt", body, {"Depth": "0"}).body)["/data/a.txt"]
    assert found["{http://owncloud.org/ns}permissions"][1].endswith(">RGDNVW</{http://owncloud.org/ns}permissions>")
    assert found["{http://owncloud.org/ns}nope"][0] == "HTTP/1.1 404 Not Found"
    assert found["{DAV:}getetag"][0] == "HTTP/1.1 200 OK"


@pytest.mark.parametrize(
    ("body", "depth", "status"),
    [
        (b"<not-xml", "1", 400),
        (b'<d:lockinfo xmlns:d="DAV:"/>', "1", 400),
        (PROPS["allprop"], "2", 400),
        (PROPS["allprop"], "infinity", 403),  # refused by the request guard: server.propfind_depth_infinity
    ],
)
def test_what_it_does_not_take_goes_to_wsgidav(client: Client, body: bytes, depth: str, status: int) -> None:
    assert client.request("PROPFIND", "/data/", body, {"Depth": depth}).status == status


@pytest.mark.parametrize("path", ["/data/", "/data/sub/", "/", "/projects/"])
@pytest.mark.parametrize("depth", [{"Depth": "infinity"}, {}])
def test_an_infinite_propfind_on_a_folder_is_refused(client: Client, path: str, depth: dict) -> None:
    answer = client.request("PROPFIND", path, PROPS["allprop"], depth)
    assert answer.status == 403
    error = etree.fromstring(answer.body)
    assert error.tag == "{DAV:}error" and error[0].tag == "{DAV:}propfind-finite-depth"
    assert "Depth: 1" in error[1].text


@pytest.mark.parametrize("depth", [{"Depth": "infinity"}, {}])
def test_an_infinite_propfind_on_a_file_is_its_depth_0(client: Client, depth: dict) -> None:
    answer = client.request("PROPFIND", "/data/a.txt", PROPS["four"], depth)
    assert answer.status == 207
    assert set(parsed(answer.body)) == {"/data/a.txt"}


def test_an_allowed_infinite_propfind_is_wsgidavs(make_app, mount_root) -> None:
    (mount_root("/data") / "sub" / "deeper").mkdir(parents=True)
    (mount_root("/data") / "sub" / "deeper" / "x.txt").write_bytes(b"x")
    client = Client(make_app(server={"propfind_depth_infinity": True}))
    answer = client.request("PROPFIND", "/data/", PROPS["four"], {"Depth": "infinity"})
    assert answer.status == 207
    assert set(parsed(answer.body)) == {"/data/", "/data/sub/", "/data/sub/deeper/", "/data/sub/deeper/x.txt"}


def test_missing_resources_and_virtual_folders(client: Client) -> None:
    assert client.request("PROPFIND", "/data/missing", PROPS["allprop"], {"Depth": "1"}).status == 404
    answer = client.request("PROPFIND", "/projects/", PROPS["four"], {"Depth": "1"})
    assert set(parsed(answer.body)) == {"/projects/", "/projects/a/", "/projects/b/"}
