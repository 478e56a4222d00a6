"""Metadata (DataNet): documents in collections, MongoDB-style filters."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from davgate.api.errors import BadRequest
from davgate.api.metadata import parse_filter
from tests.api.conftest import Api

DOCS: dict[str, dict[str, Any]] = {
    "a": {"kind": "scan", "size": 10, "tags": ["x", "y"], "site": {"name": "uva"}, "note": None},
    "b": {"kind": "scan", "size": 2.5, "tags": ["y"], "site": {"name": "lmu"}},
    "c": {"kind": "model", "size": "big", "flag": True},
    "d": {"kind": "model", "size": 30},
}


def ids(filter_text: str) -> list[str]:
    predicate = parse_filter(filter_text)
    return [i for i, doc in DOCS.items() if predicate({"_id": i, **doc})]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"kind": "scan"}', ["a", "b"]),
        ("{'kind':'scan'}", ["a", "b"]),  # the seed's single quotes
        ('{"tags": "y"}', ["a", "b"]),  # an array field matches an element
        ('{"tags": ["y"]}', ["b"]),
        ('{"site.name": "uva"}', ["a"]),
        ('{"size": {"$gt": 5}}', ["a", "d"]),
        ('{"size": {"$gte": 10, "$lt": 30}}', ["a"]),
        ('{"size": {"$lte": 2.5}}', ["b"]),
        ('{"size": {"$gt": "a"}}', ["c"]),  # strings with strings only
        ('{"kind": {"$ne": "scan"}}', ["c", "d"]),
        ('{"flag": {"$ne": true}}', ["a", "b", "d"]),  # missing is not equal
        ('{"kind": {"$in": ["model", "other"]}, "size": {"$ne": "big"}}', ["d"]),
        ('{"note": null}', ["a", "b", "c", "d"]),  # null, or missing
        ('{"size": 10.0}', ["a"]),  # numbers compare as numbers
        ('{"flag": 1}', []),  # but true is not 1
        ('{"_id": {"$in": ["b", "d"]}}', ["b", "d"]),
        ('{"site": {"name": "lmu"}}', ["b"]),  # an embedded document, whole
        ("", ["a", "b", "c", "d"]),
    ],
)  # fmt: skip
def test_filters(text: str, expected: list[str]) -> None:
    assert ids(text) == sorted(expected)


@pytest.mark.parametrize("text", ['{"$where": "1"}', '{"a": {"$regex": "x"}}', '{"a": {"$in": 1}}', "[1]", "{bad"])
def test_unsupported_filters_are_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_filter(text)


def test_entries_through_the_api(api: Api) -> None:
    token = api.register("u@example.org")
    put = api.call("PUT", "/metadata/datasets/ds-1", {"property_1": "value_1", "n": 1}, token=token)
    assert (put.status, put.json) == (201, {"_id": "ds-1"})
    assert api.call("PUT", "/metadata/datasets/ds-1", {"property_1": "value_1", "n": 2}, token=token).status == 204
    api.call("PUT", "/metadata/datasets/ds-2", {"_id": "ds-2", "property_1": "other", "n": 5}, token=token)
    assert api.call("GET", "/metadata/datasets/ds-1", token=token).json == {
        "_id": "ds-1",
        "property_1": "value_1",
        "n": 2,
    }
    query = quote("{'property_1':'value_1'}")
    assert api.call("GET", f"/metadata/datasets?filter={query}", token=token).json == [
        {"_id": "ds-1", "property_1": "value_1", "n": 2}
    ]
    query = quote(json.dumps({"n": {"$gte": 2}}))
    assert [e["_id"] for e in api.call("GET", f"/metadata/datasets?filter={query}", token=token).json] == [
        "ds-1",
        "ds-2",
    ]
    assert api.call("GET", "/metadata/datasets?filter=%7Bbad", token=token).json["error"] == "bad_json"
    other = api.register("v@example.org")
    assert api.call("GET", "/metadata/datasets/ds-1", token=other).status == 404
    assert api.call("GET", "/metadata/datasets", token=other).json == []
    assert api.call("DELETE", "/metadata/datasets/ds-1", token=token).status == 204
    assert api.call("DELETE", "/metadata/datasets/ds-1", token=token).status == 404
    assert api.call("GET", "/metadata/datasets/ds-1", token=token).status == 404


def test_bad_entries(api: Api) -> None:
    token = api.register("u@example.org")
    assert api.call("PUT", "/metadata/c/e", [1, 2], token=token).json["error"] == "wrong_type"
    assert api.call("PUT", "/metadata/c/e", {"_id": "other"}, token=token).json["error"] == "invalid_value"
    assert api.call("PUT", "/metadata/c/e", raw=b"{'a': 1}", token=token).json["error"] == "bad_json"
    assert api.call("GET", "/metadata/c/e", token=None).status == 401
