"""The request guard's header readers and body checks, one by one (no server)."""

from __future__ import annotations

import io

import pytest

from davgate.config import ConfigError, parse_config
from davgate.hardening import Refused, RequestGuard, check_transport
from davgate.hardening import headers as h
from davgate.hardening.transport import is_loopback
from davgate.hardening.xmlbody import checked_body


def refused(call, *args) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args)
    assert caught.value.reason and "\n" not in caught.value.reason
    return caught.value


@pytest.mark.parametrize("value", ["0", "1", "infinity", "Infinity", " 1 "])
def test_depth_accepts_the_three_values(value: str) -> None:
    assert h.depth(value) == value.strip().lower()


@pytest.mark.parametrize("value", ["2", "-1", "", "1,1", "infinite", "0" * 100, "1\x00"])
def test_depth_refuses_everything_else(value: str) -> None:
    assert refused(h.depth, value).status == 400


@pytest.mark.parametrize("value", ["X", "", "yes", "TF", "t f"])
def test_overwrite_refuses_all_but_t_and_f(value: str) -> None:
    assert refused(h.overwrite, value).status == 400
    assert h.overwrite(" t ") == "T"


@pytest.mark.parametrize(
    "value",
    [
        "(<opaquelocktoken:a-b>)",
        "(Not <DAV:no-lock>)",
        '(["etag"])',
        '(<urn:a> [W/"x"]) (Not ["y"])',
        "<http://h/data/a> (<urn:t>) </data/b> (<urn:u>)",
        "([214012-18eb78d1-5])",  # an entity tag copied unquoted from getetag
        "  (<urn:a>)  ",
        "(Not<urn:a>)",
    ],
)
def test_if_accepts_rfc_4918_lists(value: str) -> None:
    h.if_header(value)


@pytest.mark.parametrize(
    ("value", "rewritten"),
    [
        ('<http://h:8080/data/a%20b.txt> (["e"])', '</data/a%20b.txt> ( ["e"] )'),
        ("<https://h/data/x&y.txt> (<urn:t>) </data/ü.txt> (Not <urn:u>)", "</data/x%26y.txt> ( <urn:t> ) </data/%C3%BC.txt> ( Not <urn:u> )"),
        ("<http://h> (<urn:t>)", "</> ( <urn:t> )"),
        ("<urn:other> (<urn:t>)", "<urn:other> ( <urn:t> )"),
        ('(["e"])', '( ["e"] )'),
    ],
)  # fmt: skip
def test_if_resource_tags_become_the_paths_wsgidav_matches(value: str, rewritten: str) -> None:
    assert h.if_header(value) == rewritten


@pytest.mark.parametrize(
    "value", ["<http://h/data/%FF> (<urn:t>)", "<http://h/data/%2F> (<urn:t>)", "<http://[x/a> (<urn:t>)"]
)
def test_if_resource_tags_that_are_no_path_are_refused(value: str) -> None:
    assert refused(h.if_header, value).status == 400


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "",
        "()",
        "(<urn:a>",
        "((<urn:a>))",
        "(Not)",
        "(Not Not <urn:a>)",
        '(["unterminated)',
        "(<urn:a>) <http://h/x>",  # a tag without its list
        "(<urn:a>) <http://h/x> (<urn:b>)",  # untagged then tagged
        "<http://h/x>",
        "(urn:a)",
        "(<urn:a>) garbage",
        "(<a b>)",
    ],
)
def test_if_refuses_malformed_headers(value: str) -> None:
    assert refused(h.if_header, value).status == 400


@pytest.mark.parametrize(
    "value", ["Second-0", "second-4294967295", "Infinite", "Infinite, Second-4100000000", "Second-60,"]
)
def test_timeout_accepts(value: str) -> None:
    h.timeout(value)


@pytest.mark.parametrize(
    "value", ["garbage", "", "Second--5", "Second-4294967296", "Second-" + "9" * 5000, "Second-1.5", ","]
)
def test_timeout_refuses(value: str) -> None:
    assert refused(h.timeout, value).status == 400


@pytest.mark.parametrize("value", ["bytes=0-0", "bytes=5-", "bytes=-5", "bytes=0-1, 4-5", "BYTES=1-2"])
def test_range_accepts_byte_ranges(value: str) -> None:
    assert h.byte_ranges(value) is True


@pytest.mark.parametrize("value", ["items=0-1", "0-1", "pages=1"])
def test_range_in_another_unit_is_ignored(value: str) -> None:
    assert h.byte_ranges(value) is False


@pytest.mark.parametrize(
    "value",
    ["bytes=5-2", "bytes=abc", "bytes=", "bytes=--1", "bytes=1-2-3", "bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 30,
     "bytes=" + ",".join(["0-0"] * 65)],
)  # fmt: skip
def test_range_malformed_or_excessive_is_416(value: str) -> None:
    assert refused(h.byte_ranges, value).status == 416


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("/data/x.txt", "/data/x.txt"),
        ("http://h:1/data/Gr%C3%BC%C3%9Fe.txt", "/data/Grüße.txt"),
        ("https://h/a%20b", "/a b"),
        ("/", "/"),
    ],
)
def test_destination_gives_the_decoded_path(value: str, path: str) -> None:
    assert h.destination(value) == path


@pytest.mark.parametrize(
    "value",
    [
        "", "garbage", "data/x", "ftp://h/data/x", "http://[::1", "http:///data/x", "/data/../etc/passwd",
        "/data/%2e%2e/x", "/data/..%2fx", "/data/a%5cb", "/data/%00", "/data/%c0%ae%c0%ae/x", "/data/%ff",
        "/data/a\\b", "/" + "x" * 9000, "/data/x#", "/data/x#frag", "/data/x?q", "http://h:port/x",
    ],
)  # fmt: skip
def test_destination_refuses(value: str) -> None:
    assert refused(h.destination, value).status == 400


HERE = h.Origins(frozenset({"http"}), frozenset({"h:1", "proxy.example"}))


@pytest.mark.parametrize("value", ["http://h:1/x", "HTTP://H:1/x", "http://proxy.example/x", "/x"])
def test_destination_of_this_server(value: str) -> None:
    assert h.destination(value, HERE) == "/x"


@pytest.mark.parametrize("value", ["http://h:2/x", "http://other/x", "https://h:1/x", "http://u:p@h:1/x", "http://h/x"])
def test_destination_elsewhere_is_refused(value: str) -> None:
    assert refused(h.destination, value, HERE).status == 400


def environ(method: str, body: bytes, **extra: str) -> dict:
    return {"REQUEST_METHOD": method, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), **extra}


def test_a_checked_body_is_given_back_to_wsgidav() -> None:
    body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    env = environ("PROPFIND", body)
    checked_body(env, "PROPFIND", 1024, 100)
    assert env["wsgi.input"].read() == body and env["CONTENT_LENGTH"] == str(len(body))


def test_a_chunked_body_is_read_whole_and_given_a_length() -> None:
    body = b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    env = {"REQUEST_METHOD": "PROPFIND", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body)}
    checked_body(env, "PROPFIND", 1024, 100)
    assert env["CONTENT_LENGTH"] == str(len(body))
    too_big = {
        "REQUEST_METHOD": "PROPFIND",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(b"<a/>" * 300),
    }
    assert refused(checked_body, too_big, "PROPFIND", 1024, 100).status == 413


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', 400, "DTD"),
        (b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>', 400, "DTD"),
        (b"<x>&undeclared;</x>", 400, "not well-formed"),
        (b"<x><y></x>", 400, "not well-formed"),
        (
            "<?xml version='1.0' encoding='utf-16'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>".encode("utf-16"),
            400,
            "DTD",
        ),
        (b"<x>" + b"<y/>" * 200 + b"</x>", 413, "elements"),
    ],
)
def test_unsafe_xml_bodies_are_refused(body: bytes, status: int, words: str) -> None:
    error = refused(checked_body, environ("PROPPATCH", body), "PROPPATCH", 1 << 20, 100)
    assert error.status == status and words in error.reason


def test_body_limits_apply_before_reading() -> None:
    env = environ("LOCK", b"x" * 100)
    env["CONTENT_LENGTH"] = str(10**12)
    assert refused(checked_body, env, "LOCK", 1024, 100).status == 413
    assert env["wsgi.input"].tell() == 0  # far too large: refused unread
    copy = environ("COPY", b"x" * 2000)
    assert refused(checked_body, copy, "COPY", 1024, 100).status == 413
    assert copy["wsgi.input"].tell() == 2000  # a little too large: read and dropped, so the 413 reaches the client


@pytest.mark.parametrize("value", ["-5", "abc", "1e3", "²", "9" * 30, " 1 2"])
def test_content_length_must_be_a_number(value: str) -> None:
    called = []
    guard = RequestGuard(lambda env, start: called.append(1) or [b""])
    answers: list[str] = []
    body = b"".join(
        guard(
            {"REQUEST_METHOD": "PUT", "PATH_INFO": "/data/x", "CONTENT_LENGTH": value},
            lambda s, hdrs: answers.append(s),
        )
    )
    assert answers == ["400 Bad Request"] and b"Content-Length" in body and not called


@pytest.mark.parametrize(
    "path_info",
    [
        "/data/\xc0\xae\xc0\xae/x",
        "/data/\xff",
        "/data/../x",
        "/data/./x",
        "/data/a\\b",
        "/data/a\x00",
        "/data/\x1b[31m",
    ],
)
def test_request_paths_are_checked_without_a_raw_uri(path_info: str) -> None:
    guard = RequestGuard(lambda env, start: pytest.fail("reached the app"))
    answers: list[str] = []
    list(guard({"REQUEST_METHOD": "GET", "PATH_INFO": path_info}, lambda s, hdrs: answers.append(s)))
    assert answers == ["400 Bad Request"]


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
                                               ("localhost", True), ("0.0.0.0", False), ("::", False),
                                               ("10.1.2.3", False), ("example.org", False)])  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def transport_config(tmp_path, **server) -> object:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:$2b$04$abcdefghijklmnopqrstuu5Hs8bDmeK4M0qRmXo.ZO9cD5E8aJ.ue\n")
    data = {
        "server": server,
        "auth": {"htpasswd": str(htpasswd)},
        "state": {"type": "sqlite", "path": str(tmp_path / "s.db")},
    }
    return parse_config(data, "test")


def test_credentials_over_plain_http_beyond_loopback_are_refused(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    check_transport(transport_config(tmp_path, host="127.0.0.1"))
    with pytest.raises(ConfigError) as caught:
        check_transport(transport_config(tmp_path, host="0.0.0.0"))
    assert caught.value.key == "server.host" and "allow_insecure_basic" in str(caught.value)
    with caplog.at_level("WARNING", logger="davgate.hardening"):
        check_transport(transport_config(tmp_path, host="0.0.0.0", allow_insecure_basic=True))
    assert "plain HTTP" in caplog.text
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("not read by this check")
    check_transport(
        transport_config(
            tmp_path, host="0.0.0.0", tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem")
        )
    )


def test_comments_and_processing_instructions_are_removed_before_wsgidav_reads_the_body() -> None:
    body = b'<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><!-- c --><Z:x/><?pi x?></D:prop></D:propfind>'
    env = environ("PROPFIND", body)
    checked_body(env, "PROPFIND", 1024, 100)
    cleaned = env["wsgi.input"].read()
    assert b"<!--" not in cleaned and b"<?pi" not in cleaned and b"<Z:x/>" in cleaned
