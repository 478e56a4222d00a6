"""Hostile input against a real davgate: each answered with a 4xx and a reason, nothing changed, still serving.

See docs/RELIABILITY.md for the list and what each answered before the
request guard (davgate.hardening) existed. Related tests elsewhere:
tests/live/test_server.py (GET traversal in seven encodings),
tests/auth/test_jwt.py and tests/live/test_tokens.py (hostile JWTs),
tests/dispel/test_params.py (the parameter types, in-process).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.reliability.conftest import ADMIN_TOKEN, KEEP, Env, assert_refused

LOCKINFO = (
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>{}</D:owner></D:lockinfo>"
)
PATCH = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:c>{}</Z:c></D:prop></D:set></D:propertyupdate>'
)
FIND = '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:c/>{}</D:prop></D:propfind>'
BODIES = {"LOCK": LOCKINFO, "PROPPATCH": PATCH, "PROPFIND": FIND}
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]>"
)
XXE = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
XML_ATTACKS = {
    "billion laughs": (LAUGHS, "&lol9;"),
    "quadratic blowup": ('<!DOCTYPE x [<!ENTITY a "' + "a" * 20000 + '">]>', "&a;" * 1000),
    "external entity": (XXE, "&e;"),
    "external DTD": ('<!DOCTYPE x SYSTEM "file:///etc/passwd">', ""),
    "parameter entity": ('<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', ""),
    "network entity": ('<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]>', "&e;"),
    "undeclared entity": ("", "&e;"),
}


@pytest.mark.parametrize("method", list(BODIES))
@pytest.mark.parametrize("attack", list(XML_ATTACKS))
def test_xml_entity_attacks_are_400_without_expansion(hostile: Env, method: str, attack: str) -> None:
    prologue, reference = XML_ATTACKS[attack]
    body = (prologue + BODIES[method].format(reference)).encode()
    with hostile.unchanged():
        reply = hostile.send(method, "/data/keep.txt", {"Depth": "0"}, body)
        assert_refused(reply, 400)
        assert "root:" not in reply.text and "lollol" not in reply.text
        assert re.search(r"DTD|entit|well-formed", reply.text), reply.text


def test_an_xml_attack_in_utf16_is_refused_too(hostile: Env) -> None:
    body = ('<?xml version="1.0" encoding="UTF-16"?>' + XXE[21:] + PATCH.format("&e;")).encode("utf-16")
    with hostile.unchanged():
        assert_refused(hostile.send("PROPPATCH", "/data/keep.txt", body=body), 400)


def test_xinclude_is_stored_as_data_never_resolved(hostile: Env) -> None:
    include = '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
    assert hostile.send("PROPPATCH", "/data/keep.txt", body=PATCH.format(include).encode()).status == 207
    found = hostile.send("PROPFIND", "/data/keep.txt", {"Depth": "0"}, FIND.format("").encode())
    assert found.status == 207 and "include" in found.text and "root:" not in found.text
    remove = PATCH.replace("D:set", "D:remove").format("")
    assert hostile.send("PROPPATCH", "/data/keep.txt", body=remove.encode()).status == 207


def test_comments_in_a_propfind_body_are_not_taken_for_properties(hostile: Env) -> None:
    body = FIND.format("<!-- a comment --><?pi x?><D:getetag/>").encode()
    reply = hostile.send("PROPFIND", "/data/keep.txt", {"Depth": "0"}, body)
    assert reply.status == 207 and "getetag" in reply.text and " 500 " not in reply.text


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK", "COPY", "MOVE"])
def test_oversized_bodies_are_413_before_being_read(hostile: Env, method: str) -> None:
    headers = {"Depth": "0", "Destination": "/archive/x.txt", "Content-Length": str(10**12)}
    with hostile.unchanged():
        assert_refused(hostile.send(method, "/data/keep.txt", headers), 413)  # nothing sent: it must not wait for it


def test_an_oversized_sent_body_and_an_oversized_chunked_body_are_413(hostile: Env) -> None:
    big = FIND.format("<Z:x/>" * 20000).encode()  # > max_xml_body (64 KiB here)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    with hostile.unchanged():
        assert_refused(hostile.send("PROPFIND", "/data/", {"Depth": "1"}, big), 413)
        reply = hostile.send(
            "PROPFIND", "/data/", {"Depth": "1", "Transfer-Encoding": "chunked", "Content-Length": None}, chunked
        )
        assert_refused(reply, 413)


def test_too_many_elements_in_a_small_body_is_413(hostile: Env) -> None:
    with hostile.unchanged():
        reply = hostile.send("PROPFIND", "/data/", {"Depth": "1"}, FIND.format("<Z:x/>" * 10_001).encode())
        assert_refused(reply, 413)


def test_deep_nesting_is_refused(hostile: Env) -> None:
    with hostile.unchanged():
        assert_refused(
            hostile.send("PROPPATCH", "/data/keep.txt", body=PATCH.format("<a>" * 5000 + "</a>" * 5000).encode())
        )


def test_oversized_headers_are_431_and_urls_414(hostile: Env) -> None:
    with hostile.unchanged():  # RFC 6585: 431 Request Header Fields Too Large
        assert_refused(hostile.send("GET", "/data/keep.txt", {"X-Big": "a" * 70_000}), 431)
        assert_refused(hostile.send("GET", "/data/keep.txt", {f"X-{i}": "a" * 100 for i in range(700)}), 431)
        assert_refused(hostile.send("GET", "/data/" + "a" * 70_000), 414)


@pytest.mark.parametrize("value", ["-5", "abc", "1e3", "9" * 5000])
def test_malformed_content_length_is_400(hostile: Env, value: str) -> None:
    with hostile.unchanged():
        assert_refused(hostile.send("PUT", "/data/keep.txt", {"Content-Length": value}, b"x"), 400)


TRAVERSALS = [
    "../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "..%2f..%2fetc%2fpasswd",
    "..%5c..%5cetc%5cpasswd", "..\\..\\etc\\passwd", ".%2e/.%2e/etc/passwd", "%00", "x%00.txt", "%c0%ae%c0%ae/etc/passwd",
    "%c0%af..%c0%afetc", "%e0%80%ae%e0%80%ae/etc/passwd", "%ff%fe", "x%0d%0aSet-Cookie:%20a=b", "%ef%bc%8e%ef%bc%8e/etc/passwd",
    "%e2%80%a4%e2%80%a4/etc/passwd", "%252e%252e/%252e%252e/etc/passwd", "out/secret.txt", "out/new.txt", "secret-link.txt",
]  # fmt: skip
METHODS = ["GET", "PUT", "DELETE", "MKCOL", "PROPFIND", "PROPPATCH", "LOCK", "COPY", "MOVE"]


@pytest.mark.parametrize("method", METHODS)
def test_traversal_in_every_encoding_and_links_out_of_the_mount(hostile: Env, method: str) -> None:
    body = {"PUT": b"overwritten", "PROPPATCH": PATCH.format("x").encode(), "LOCK": LOCKINFO.format("x").encode()}.get(
        method, b""
    )
    headers = {"Depth": "0", "Destination": "/archive/moved.txt"}
    with hostile.unchanged():
        for rel in TRAVERSALS:
            reply = hostile.send(method, "/data/" + rel, headers, body)
            assert_refused(reply)
            assert "root:" not in reply.text, rel
    assert "secret" not in hostile.send("PROPFIND", "/data/", {"Depth": "1"}).text  # links out are not listed


@pytest.mark.parametrize(
    "destination",
    ["/data/../outside/x.txt", "/data/%2e%2e/%2e%2e/tmp/x.txt", "/data/..%2fx", "/data/out/x.txt", "/data/x%00",
     "/data/%c0%ae%c0%ae/x", "http://[::1", "ftp://127.0.0.1/data/x", "data/x", "", "/dispel/x", "/"],
)  # fmt: skip
def test_destinations_that_leave_the_mounts_are_refused(hostile: Env, destination: str) -> None:
    for method in ("COPY", "MOVE"):
        with hostile.unchanged():
            assert_refused(hostile.send(method, "/data/keep.txt", {"Destination": destination}), 400, 403, 409)


def test_destination_cases_have_their_statuses(hostile: Env) -> None:
    with hostile.unchanged():
        for method in ("COPY", "MOVE"):
            assert_refused(hostile.send(method, "/data/keep.txt", {"Destination": "http://other.example/data/x"}), 400)
            assert_refused(hostile.send(method, "/data/keep.txt", {"Destination": "/nowhere/x.txt"}), 403, 409)
            assert_refused(hostile.send(method, "/data/keep.txt", {"Destination": "/data/keep.txt"}), 403)
            assert_refused(hostile.send(method, "/data/keep.txt", {"Destination": "/"}), 403)


def malformed_destinations(url: str) -> list[str]:
    here = url.split("://", 1)[1]
    return [
        "/data/x.txt#fragment", f"{url}/data/x.txt#", f"{url}/data/x.txt?x=1", f"ftp://{here}/data/x.txt",
        f"https://{here}/data/x.txt", "http://other.example/data/x.txt", f"http://user:pw@{here}/data/x.txt",
        f"http://{here.split(':')[0]}:notaport/data/x.txt", "http://[::1", "garbage", "", " ",
    ]  # fmt: skip


def test_a_malformed_destination_is_400_with_a_reason_after_authentication(hostile: Env) -> None:
    with hostile.unchanged():
        for destination in malformed_destinations(hostile.url):
            for method in ("COPY", "MOVE"):
                stranger = hostile.send(method, "/data/keep.txt", {"Destination": destination}, auth=False)
                assert stranger.status == 401, (destination, stranger.status)  # who asks comes first
                reply = hostile.send(method, "/data/keep.txt", {"Destination": destination})
                assert_refused(reply, 400)
                assert len(reply.text.strip().splitlines()) == 1 and "Destination" in reply.text, reply.text[:300]
                assert "Traceback" not in reply.text
    assert "Traceback" not in hostile.server.log_text()


VIRTUAL = ["/", "/dispel", "/dispel/", "/dispel/tiffstore/", "/dispel/tiffstore/312/", "/nowhere/"]
VIRTUAL_WRITES = ["PROPPATCH", "LOCK", "UNLOCK", "PUT", "DELETE", "MKCOL", "MOVE", "POST"]


def test_virtual_folders_refuse_every_write_for_everyone(hostile: Env) -> None:
    bodies = {"PROPPATCH": PATCH.format("x").encode(), "LOCK": LOCKINFO.format("x").encode(), "PUT": b"x"}
    with hostile.unchanged():
        for path in VIRTUAL:
            for method in VIRTUAL_WRITES:
                headers = {"Depth": "0", "Destination": "/data/moved", "Lock-Token": "<opaquelocktoken:x>"}
                reply = hostile.send(method, path, headers, bodies.get(method, b""))
                assert_refused(reply, 403)
            into = hostile.send("COPY", "/data/keep.txt", {"Destination": path.rstrip("/") + "/copy.txt"})
            assert_refused(into, 403)


def test_copy_and_move_between_two_mounts_are_normal_operations(hostile: Env) -> None:
    assert hostile.send("PUT", "/data/travel.txt", body=b"travels").status == 201
    assert hostile.send("COPY", "/data/travel.txt", {"Destination": f"{hostile.url}/archive/travel.txt"}).status == 201
    assert (hostile.archive / "travel.txt").read_bytes() == b"travels"
    assert hostile.send("MOVE", "/archive/travel.txt", {"Destination": "/data/back.txt"}).status == 201
    assert (hostile.data / "back.txt").read_bytes() == b"travels" and not (hostile.archive / "travel.txt").exists()
    for name in ("travel.txt", "back.txt"):
        assert hostile.send("DELETE", f"/data/{name}").status == 204


@pytest.mark.parametrize(
    ("header", "values", "methods"),
    [
        ("Depth", ["2", "-1", "garbage", "1,1", "infinite", "0" * 50], ["PROPFIND", "COPY", "MOVE", "DELETE", "LOCK"]),
        ("Overwrite", ["X", "yes", "TF", "0"], ["COPY", "MOVE"]),
        ("If", ["garbage", "(<nolock>", "()", "(Not)", "((<a>))", "(<a>) <http://x/>", '(["open)'],
         ["PUT", "DELETE", "MOVE", "COPY", "PROPPATCH", "LOCK", "MKCOL"]),
        ("Timeout", ["garbage", "Second--5", "Second-" + "9" * 5000, "Second-1.5"], ["LOCK"]),
    ],
)  # fmt: skip
def test_malformed_headers_are_400_and_nothing_is_written(
    hostile: Env, header: str, values: list[str], methods: list[str]
) -> None:
    body = {"PUT": b"overwritten", "PROPPATCH": PATCH.format("x").encode(), "LOCK": LOCKINFO.format("x").encode()}
    with hostile.unchanged():
        for method in methods:
            for value in values:
                headers = {
                    "Destination": "/archive/copy.txt",
                    "Depth": "0" if method == "LOCK" else None,
                    header: value,
                }
                reply = hostile.send(
                    method, "/data/keep.txt" if method != "MKCOL" else "/data/newdir", headers, body.get(method, b"")
                )
                assert_refused(reply, 400)
                assert header in reply.text, reply.text


@pytest.mark.parametrize("value", ["bytes=5-2", "bytes=abc", "bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 50, "bytes=1-2-3",
                                   "bytes=" + ",".join(["0-0"] * 100)])  # fmt: skip
def test_malformed_ranges_are_416_with_a_reason(hostile: Env, value: str) -> None:
    reply = hostile.send("GET", "/data/keep.txt", {"Range": value})
    assert_refused(reply, 416)
    assert "Range" in reply.text


def test_ranges_that_are_fine_or_in_another_unit(hostile: Env) -> None:
    part = hostile.send("GET", "/data/keep.txt", {"Range": "bytes=4-7"})
    assert part.status == 206 and part.body == KEEP[4:8]
    whole = hostile.send("GET", "/data/keep.txt", {"Range": "items=0-1"})
    assert whole.status == 200 and whole.body == KEEP  # an unknown unit is ignored (RFC 9110 14.2)
    beyond = hostile.send("GET", "/data/keep.txt", {"Range": "bytes=1000-2000"})
    assert beyond.status == 416


DISPEL = "/dispel/tiffstore/312/20181129"
DISPEL_BAD = {
    f"{DISPEL}/-1/0-10-0-10": "layer",
    f"{DISPEL}/{'9' * 5000}/0-10-0-10": "layer",
    f"{DISPEL}/abc/0-10-0-10": "layer",
    f"{DISPEL}/1.5/0-10-0-10": "layer",
    f"{DISPEL}/0x1/0-10-0-10": "layer",
    f"{DISPEL}/%EF%BC%91/0-10-0-10": "layer",
    f"{DISPEL}/99/0-10-0-10": "layer",
    f"{DISPEL}/1/0-{'9' * 5000}-0-10": "grid",
    f"{DISPEL}/1/0-99999999999-0-10": "grid",
    f"{DISPEL}/1/10-0-0-10": "grid",
    f"{DISPEL}/1/-5-10-0-10": "grid",
    f"{DISPEL}/1/0-100000-0-100000": "grid",
    f"{DISPEL}/1/0-10-0-10.exe": "grid",
    f"{DISPEL}/1/0-10-0-10/extra": "expected 4 parameters",
    "/dispel/tiffstore/312/20181399/1/0-10-0-10": "date",
    f"/dispel/tiffstore/{'3' * 100}/20181129/1/0-10-0-10": "subject",
    "/dispel/nosuch/1": "unknown template",
}


@pytest.mark.parametrize("path", list(DISPEL_BAD))
def test_dispel_parameters_huge_negative_non_numeric_out_of_bounds(hostile: Env, path: str) -> None:
    with hostile.unchanged():
        reply = hostile.send("GET", path, timeout=60)
        assert_refused(reply, 400, 404)
        assert DISPEL_BAD[path] in reply.text, reply.text


API_CALLS = [
    ("POST", "/api/v1/infrastructure"),
    ("PUT", "/api/v1/user"),
    ("POST", "/api/v1/copy"),
    ("PUT", "/api/v1/metadata/c/1"),
]
API_BODIES = {
    "empty": b"",
    "not JSON": b"not json",
    "not UTF-8": b"\xff\xfe{}",
    "a string": b'"x"',
    "a number": b"5",
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "objects nested 5000 deep": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "a 5000-digit number": b'{"n": ' + b"9" * 5000 + b"}",
    "NaN": b'{"n": NaN, "name": "x"}',
    "unknown fields": b'{"surprise": 1}',
}


def api_state(env: Env) -> list[str]:
    token = {"X-Access-Token": ADMIN_TOKEN}
    paths = ("/api/v1/infrastructure", "/api/v1/user", "/api/v1/copy", "/api/v1/metadata/c")
    return [env.send("GET", path, token, auth=False).text for path in paths]


@pytest.mark.parametrize("shape", list(API_BODIES))
def test_management_api_bodies_of_the_wrong_shape(hostile: Env, shape: str) -> None:
    before = api_state(hostile)
    with hostile.unchanged():
        for method, path in API_CALLS:
            if shape == "unknown fields" and "/metadata/" in path:
                continue  # metadata documents are free-form objects
            headers = {"X-Access-Token": ADMIN_TOKEN, "Content-Type": "application/json"}
            reply = hostile.send(method, path, headers, API_BODIES[shape], auth=False)
            assert_refused(reply, 400, 413)
            assert json.loads(reply.body)["detail"], reply.text
    assert api_state(hostile) == before


def test_management_api_bodies_over_max_body_are_413(hostile: Env) -> None:
    headers = {"X-Access-Token": ADMIN_TOKEN, "Content-Type": "application/json", "Content-Length": str(2 << 20)}
    with hostile.unchanged():
        for method, path in API_CALLS:
            reply = hostile.send(method, path, headers, auth=False)  # refused on the declared length, unsent
            assert_refused(reply, 413)


def test_management_api_without_or_with_a_wrong_token(hostile: Env) -> None:
    with hostile.unchanged():
        for method, path in API_CALLS:
            for headers in ({}, {"X-Access-Token": "wrong-" + ADMIN_TOKEN}, {"X-Access-Token": "x" * 5000}):
                reply = hostile.send(
                    method,
                    path,
                    {**headers, "Content-Type": "application/json"},
                    b'{"email": "a@b", "name": "n"}',
                    auth=False,
                )
                assert_refused(reply, 401, 403)


@pytest.mark.parametrize(
    "query",
    ["notjson", "%7B%22%24where%22%3A%221%22%7D", "%5B" * 5000, "%7B%22a%22%3A" * 3000 + "1" + "%7D" * 3000, "%00"],
)
def test_management_api_metadata_filters_that_are_hostile(hostile: Env, query: str) -> None:
    with hostile.unchanged():
        reply = hostile.send("GET", "/api/v1/metadata/c?filter=" + query, {"X-Access-Token": ADMIN_TOKEN}, auth=False)
        assert_refused(reply, 400)
        assert json.loads(reply.body)["detail"].startswith("filter"), reply.text
