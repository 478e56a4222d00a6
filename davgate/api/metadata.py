"""Metadata (the seed's DataNet): JSON documents in collections, queried with MongoDB-style filters.

``PUT /api/v1/metadata/<collection>/<id>`` stores a JSON object (201 when
new, 204 when it replaced one); ``GET`` on it returns the object with its
``_id``; ``DELETE`` removes it; ``GET /api/v1/metadata/<collection>`` returns
the documents, each with its ``_id``, that match ``?filter=<json>``.
Collections belong to the user who writes them.

Filters are the subset of MongoDB's query language below, with MongoDB's
meaning, evaluated here for every backend alike::

    {"field": value}                  equality (a field holding an array matches if any element does)
    {"field": {"$ne": value}}         not equal (a missing field is not equal)
    {"field": {"$in": [v1, v2]}}      equal to one of them
    {"field": {"$gt": v}} ($gte, $lt, $lte)  ordered comparison, numbers with numbers, strings with strings
    {"a": 1, "b": {"$gte": 2, "$lt": 5}}    several conditions: all must hold
    {"a.b": 1}                        a field of an embedded object
    {"field": null}                   null or missing

The seed's example writes the filter with single quotes
(``{'property_1':'property_value_1'}``); that is accepted too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from davgate.api.errors import BadRequest

__all__ = ["compile_filter", "parse_filter", "check_document", "check_key"]

Predicate = Callable[[dict[str, Any]], bool]
MISSING = object()
OPERATORS = ("$eq", "$ne", "$in", "$gt", "$gte", "$lt", "$lte")
KEY = re.compile(r"[^/]{1,256}")  # matched whole (fullmatch), and printable
MAX_FILTER = 16 * 1024


def check_key(value: str, what: str) -> str:
    if not KEY.fullmatch(value) or not value.isprintable() or value in (".", ".."):
        raise BadRequest(f"{what}: expected 1-256 printable characters without '/'", "invalid_value")
    return value


def check_document(body: Any, entry_id: str) -> dict[str, Any]:
    """A document to store: a JSON object; an ``_id`` in it must be the one in the path."""
    if not isinstance(body, dict):
        raise BadRequest("a metadata entry is a JSON object", "wrong_type")
    document = dict(body)
    given = document.pop("_id", entry_id)
    if given != entry_id:
        raise BadRequest("_id: differs from the id in the path", "invalid_value")
    return document


def parse_filter(text: str | None) -> Predicate:
    """The predicate of a ``filter`` query parameter (JSON, or the seed's single-quoted form)."""
    if text is None or not text.strip():
        return lambda document: True
    if len(text) > MAX_FILTER:
        raise BadRequest(f"filter: longer than {MAX_FILTER} characters", "invalid_value")
    try:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = json.loads(double_quoted(text))
            except json.JSONDecodeError:
                raise BadRequest("filter: not valid JSON", "bad_json") from None
        return compile_filter(value)
    except RecursionError:
        raise BadRequest("filter: nested too deeply", "bad_json") from None


def double_quoted(text: str) -> str:
    """``{'a':'it''s'}``-style single-quoted strings turned into JSON strings."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == '"':
            end = skip_string(text, i, '"')
            out.append(text[i:end])
            i = end
        elif char == "'":
            end = skip_string(text, i, "'")
            out.append(json.dumps(text[i + 1 : end - 1].replace("\\'", "'")))
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)


def skip_string(text: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def compile_filter(value: Any) -> Predicate:
    if not isinstance(value, dict):
        raise BadRequest("filter: expected a JSON object", "wrong_type")
    tests = [field_test(name, condition) for name, condition in value.items()]
    return lambda document: all(test(document) for test in tests)


def field_test(name: str, condition: Any) -> Predicate:
    if name.startswith("$"):
        raise BadRequest(f"filter: {name[:20]} is not supported (fields, with {', '.join(OPERATORS)})", "invalid_value")
    path = name.split(".")
    if isinstance(condition, dict) and condition and all(key.startswith("$") for key in condition):
        checks = [operator(key, operand) for key, operand in condition.items()]
    else:
        checks = [operator("$eq", condition)]
    return lambda document: all(check(lookup(document, path)) for check in checks)


def operator(name: str, operand: Any) -> Callable[[Any], bool]:
    if name == "$eq":
        return lambda value: matches(value, operand)
    if name == "$ne":
        return lambda value: not matches(value, operand)
    if name == "$in":
        if not isinstance(operand, list):
            raise BadRequest("filter: $in takes an array", "wrong_type")
        return lambda value: any(matches(value, item) for item in operand)
    if name in ("$gt", "$gte", "$lt", "$lte"):
        return lambda value: any_element(value, lambda v: ordered(name, v, operand))
    raise BadRequest(f"filter: {name[:20]} is not supported ({', '.join(OPERATORS)})", "invalid_value")


def lookup(document: dict[str, Any], path: list[str]) -> Any:
    value: Any = document
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def matches(value: Any, operand: Any) -> bool:
    """MongoDB equality: null matches missing; an array matches if it equals or contains the operand."""
    if operand is None:
        return value is MISSING or value is None
    if value is MISSING:
        return False
    if equal(value, operand):
        return True
    return isinstance(value, list) and any(equal(item, operand) for item in value)


def equal(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return a == b


def any_element(value: Any, test: Callable[[Any], bool]) -> bool:
    if value is MISSING:
        return False
    return test(value) or (isinstance(value, list) and any(test(item) for item in value))


def ordered(name: str, value: Any, operand: Any) -> bool:
    """Numbers compare with numbers, strings with strings; anything else never matches (MongoDB's brackets)."""
    if not ((is_number(value) and is_number(operand)) or (isinstance(value, str) and isinstance(operand, str))):
        return False
    if name == "$gt":
        return value > operand
    if name == "$gte":
        return value >= operand
    if name == "$lt":
        return value < operand
    return value <= operand


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
