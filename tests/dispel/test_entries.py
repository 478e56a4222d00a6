"""A result's cache entry as read-only properties, and the per-template counters behind /metrics."""

from __future__ import annotations

import threading
import time
from xml.etree import ElementTree

from davgate.dispel import counters
from davgate.dispel.tree import ENTRY_PROPERTIES
from tests.dispel.conftest import Dispel
from tests.dispel.test_results import RESULT, TESTS, add_template

NS = "urn:davgate:dispel"
PROPS = ("template", "parameters", "size", "created", "hits", "last-use", "checksum", "definition")


def properties(dispel: Dispel, path: str, names: tuple[str, ...] = ()) -> dict[str, str]:
    """The urn:davgate:dispel properties PROPFIND shows for ``path`` (all of them, or ``names``)."""
    if names:
        wanted = "".join(f"<d:{name}/>" for name in names)
        body = f'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:d="{NS}"><D:prop>{wanted}</D:prop></D:propfind>'
    else:
        body = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    response = dispel.client.propfind(path, depth="0", body=body.encode())
    assert response.status == 207, response.text
    found = {}
    for propstat in ElementTree.fromstring(response.body).iter("{DAV:}propstat"):
        if "200" not in propstat.findtext("{DAV:}status", ""):
            continue
        for prop in propstat.find("{DAV:}prop"):
            if prop.tag.startswith(f"{{{NS}}}"):
                found[prop.tag.split("}", 1)[1]] = prop.text or ""
    return found


def test_the_names_are_as_documented() -> None:
    assert tuple(name.split("}", 1)[1] for name in ENTRY_PROPERTIES) == PROPS


def test_a_cached_result_shows_its_cache_entry(dispel: Dispel) -> None:
    before = time.time()
    body = dispel.get(RESULT).body
    for _ in range(2):
        dispel.get(RESULT)
    shown = properties(dispel, RESULT)
    entry = dispel.app.store.cache_entries()[0]
    assert set(shown) == set(PROPS)
    assert shown["template"] == "tiffstore" and shown["parameters"] == "312/20181129/3/10-250-20-180.tif"
    assert shown["size"] == str(len(body)) and shown["hits"] == "2"
    assert shown["checksum"] == entry.digest and shown["checksum"].startswith("crc32:")
    assert shown["definition"] == entry.definition
    assert shown["created"].endswith("Z") and shown["last-use"] >= shown["created"]
    assert time.strftime("%Y-%m-%d", time.gmtime(before)) in shown["created"]
    assert dispel.executions() == 1


def test_named_properties_and_listings(dispel: Dispel) -> None:
    folder = "/dispel/tiffstore/312/20181129/3/"
    dispel.get(folder + "0-128-0-128.png")
    assert properties(dispel, folder + "0-128-0-128.png", ("hits", "template")) == {
        "hits": "0",
        "template": "tiffstore",
    }
    listing = ElementTree.fromstring(dispel.client.propfind(folder, depth="1").body)
    shown = {
        response.findtext("{DAV:}href"): response.findtext(f".//{{{NS}}}parameters")
        for response in listing.iter("{DAV:}response")
    }
    assert shown[folder + "0-128-0-128.png"] == "312/20181129/3/0-128-0-128.png"
    assert shown[folder + "0-128-0-128.tif"] is None  # not cached: no entry to show
    assert dispel.executions() == 1


def test_the_properties_are_read_only(dispel: Dispel) -> None:
    dispel.get(RESULT)
    body = (
        f'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:d="{NS}">'
        "<D:set><D:prop><d:hits>0</d:hits></D:prop></D:set></D:propertyupdate>"
    )
    assert dispel.client.request("PROPPATCH", RESULT, body.encode()).status == 403
    assert properties(dispel, RESULT, ("hits",)) == {"hits": "0"}


def test_counters_by_template(dispel: Dispel) -> None:
    add_template(dispel, "slowish", f"{{element: '{TESTS}:sleep', seconds: 0.5}}")
    for _ in range(3):
        assert dispel.get(RESULT).status == 200
    assert dispel.get(RESULT + ".png").status == 200
    assert dispel.get(RESULT, **{"If-None-Match": dispel.get(RESULT).headers["etag"]}).status == 304
    barrier = threading.Barrier(4)

    def get() -> None:
        barrier.wait()
        assert dispel.get("/dispel/slowish/312/20181129/3/10-250-20-180").status == 200

    threads = [threading.Thread(target=get) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    dispel.app.mounts["/dispel"].engine.cache.flush()
    assert counters(dispel.app.store) == {
        "tiffstore": {"executions": 2, "cache_hits": 3, "cache_misses": 2},
        "slowish": {"executions": 1, "cache_hits": 0, "cache_misses": 4},  # three joined the one run
    }


def test_failed_and_timed_out_runs_count(dispel: Dispel) -> None:
    add_template(dispel, "broken", f"{{element: '{TESTS}:boom'}}")
    assert dispel.get("/dispel/broken/312/20181129/3/0-10-0-10").status == 500
    assert dispel.get("/dispel/nope/312/20181129/3/0-10-0-10").status == 404  # no run, nothing counted
    dispel.app.mounts["/dispel"].engine.cache.flush()
    assert counters(dispel.app.store) == {"broken": {"executions": 1, "cache_hits": 0, "cache_misses": 1}}
