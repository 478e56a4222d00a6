"""Fuzzing (hypothesis): XML bodies of PROPFIND, PROPPATCH and LOCK, and the DISPEL path parser.

Properties:

- whatever the body, the answer is never a 5xx; a body with a DTD or an
  entity is a 400; and afterwards the resource's properties still render
  (no stored value that answers 500 later, no lock left behind by a
  refused LOCK);
- whatever the segments, the DISPEL parser returns a selection or raises a
  DispelError with status 400, and nothing else.

CI runs a fixed (derandomised) set of examples; set
``DAVGATE_FUZZ_EXAMPLES=5000`` for a longer, random run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from davgate.app import Application, build_app
from davgate.config import parse_config
from davgate.dispel.elements import Registry
from davgate.dispel.errors import DispelError
from davgate.dispel.templates import load_template
from tests.helpers import write_htpasswd
from tests.wsgi.client import Client

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("DAVGATE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 150,
    derandomize=not EXAMPLES,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DAV_NAMES = ["propfind", "prop", "allprop", "propname", "include", "propertyupdate", "set", "remove",
             "lockinfo", "lockscope", "exclusive", "shared", "locktype", "write", "owner", "href", "displayname"]  # fmt: skip
ENTITY_TRICKS = [
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd">',
    '<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    "<!DOCTYPE x [<!ELEMENT x ANY>]>",
]
REFERENCES = [
    "&a;",
    "&b;",
    "&e;",
    "&lt;",
    "&#x41;",
    "&#0;",
    "&#xD800;",
    "&amp;",
    "]]>",
    "<![CDATA[x]]>",
    "<?pi x?>",
    "<!-- c -->",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    base = tmp_path_factory.mktemp("fuzz")
    (base / "data").mkdir()
    (base / "data" / "target.txt").write_bytes(b"content")
    config = {
        "auth": {"htpasswd": str(write_htpasswd(base / "htpasswd"))},
        "mounts": {"/data": {"type": "local", "root": str(base / "data")}},
        "state": {"type": "sqlite", "path": str(base / "state.db")},
    }
    application = build_app(parse_config(config, "fuzz"))
    yield application
    application.close()


SKELETONS = {
    "PROPFIND": '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:x/>{}</D:prop></D:propfind>',
    "PROPPATCH": '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:x>{}</Z:x></D:prop></D:set></D:propertyupdate>',
    "LOCK": '<D:lockinfo xmlns:D="DAV:" xmlns:Z="urn:z"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>{}</D:owner></D:lockinfo>",
}


@st.composite
def xml_bodies(draw: st.DrawFn, method: str) -> bytes:
    """The method's own body shape (or a random DAV tree), with entity tricks, odd text and broken bytes."""

    def text() -> str:
        return draw(st.one_of(st.just(""), st.sampled_from(REFERENCES), st.text(max_size=20)))

    def element(depth: int) -> str:
        name = draw(st.sampled_from(DAV_NAMES))
        prefix = draw(st.sampled_from(["D:", "D:", "Z:", ""]))
        children = "" if depth > 3 else "".join(element(depth + 1) for _ in range(draw(st.integers(0, 3))))
        return f"<{prefix}{name}>{text()}{children}</{prefix}{name}>"

    if draw(st.integers(0, 3)) == 0:
        root = draw(st.sampled_from(["propfind", "propertyupdate", "lockinfo"]))
        body = f'<D:{root} xmlns:D="DAV:" xmlns:Z="urn:z">{element(0)}</D:{root}>'
    else:
        inner = "".join(text() if draw(st.booleans()) else element(2) for _ in range(draw(st.integers(1, 3))))
        body = SKELETONS[method].format(inner)
    if draw(st.booleans()):
        body = draw(st.sampled_from(ENTITY_TRICKS)) + body
    if draw(st.booleans()):
        body = '<?xml version="1.0" encoding="utf-8"?>' + body
    data = body.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # a byte-level mutation
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at + draw(st.integers(0, 4)) :]
    return data


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
def test_xml_bodies_never_cause_a_5xx_or_a_poisoned_store(app: Application, method: str) -> None:
    client = Client(app)

    @FUZZ
    @given(body=xml_bodies(method))
    def one(body: bytes) -> None:
        response = client.request(method, "/data/target.txt", body, {"Depth": "0"})
        assert response.status < 500, (response.status, body, response.text[:300])
        if re.search(rb"<!(DOCTYPE|ENTITY)", body):
            assert response.status == 400, (body, response.status)
        if response.status == 200 and "lock-token" in response.headers:
            unlock = client.request(
                "UNLOCK", "/data/target.txt", headers={"Lock-Token": response.headers["lock-token"]}
            )
            assert unlock.status == 204
        after = client.propfind("/data/target.txt", depth="0")
        assert after.status == 207 and " 500 " not in after.text, (body, after.text[:500])
        assert client.put("/data/target.txt", b"content").status in (201, 204)  # no lock left behind

    one()


@pytest.fixture(scope="module")
def tiffstore():
    return load_template(REPO / "conf" / "dispel" / "tiffstore.yaml", Registry())


SEGMENT = st.one_of(
    st.text(min_size=0, max_size=30),
    st.from_regex(r"-?[0-9]{1,40}", fullmatch=True),
    st.from_regex(r"[0-9]{1,12}-[0-9]{1,12}-[0-9]{1,12}-[0-9]{1,12}(\.(tif|png|npy|json|csv|exe))?", fullmatch=True),
    st.from_regex(r"(19|20)[0-9]{2}[01][0-9][0-3][0-9]", fullmatch=True),
    st.sampled_from(["..", ".", "%2e%2e", "\x00", "٣", "1e3", "0x10", "+1", "9" * 5000]),
)


@FUZZ
@given(segments=st.lists(SEGMENT, max_size=6))
def test_the_dispel_path_parser_answers_400_or_a_selection(tiffstore, segments: list[str]) -> None:
    try:
        selection = tiffstore.parse(segments)
    except DispelError as error:
        assert error.status == 400 and error.reason and "\n" not in error.reason and len(error.reason) <= 300
        return
    assert len(selection.values) == len(segments)
    if selection.complete:
        grid = selection.values[3]
        assert grid["x0"] < grid["x1"] and grid["y0"] < grid["y1"]
        assert selection.values[2] >= 0
