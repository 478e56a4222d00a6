"""Checking request bodies: JSON objects with known fields of known types.

Every refusal names the field by its place in the body
(``storageAdaptorContainers[1].host``) and what was expected, never the
value that was sent. Unknown fields are refused rather than ignored, so a
misspelt key is an error and not a silent default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from davgate.api.errors import BadRequest

__all__ = [
    "ANY", "BOOLEAN", "INTEGER", "LIST", "OBJECT", "TEXT", "Kind", "fields", "is_name", "name_of", "parse_json",
]  # fmt: skip

# Every pattern that guards a name or an id is matched whole (fullmatch): with
# match() and "$", "evil\n" would pass, "$" matching before a final newline.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True)
class Kind:
    """A JSON type a field may have."""

    types: tuple[type, ...]
    description: str

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return bool in self.types
        return isinstance(value, self.types)


TEXT = Kind((str,), "a string")
INTEGER = Kind((int,), "an integer")
BOOLEAN = Kind((bool,), "true or false")
OBJECT = Kind((dict,), "an object")
LIST = Kind((list,), "an array")
ANY = Kind((str, int, float, bool, dict, list, type(None)), "any JSON value")


def parse_json(data: bytes) -> Any:
    """The JSON document in a request body (no NaN or Infinity, not nested beyond Python's recursion limit)."""
    if not data.strip():
        raise BadRequest("the request body is empty; a JSON document is expected", "bad_json")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        detail = f"line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else "not UTF-8"
        raise BadRequest(f"the request body is not valid JSON ({detail})", "bad_json") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply", "bad_json") from None
    except ValueError:  # a number of more than 4300 digits, or NaN/Infinity
        raise BadRequest(
            "the request body has a number JSON does not allow (NaN, Infinity, or too many digits)", "bad_json"
        ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def fields(
    value: Any, where: str, required: Mapping[str, Kind], optional: Mapping[str, Kind] | None = None
) -> dict[str, Any]:
    """``value`` as a checked object: every required field there, no unknown ones, all of their kinds."""
    optional = optional or {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where or 'the body'}: expected an object", "wrong_type")
    allowed = {**required, **optional}
    for name in value:
        if name not in allowed:
            names = ", ".join(sorted(allowed))
            raise BadRequest(f"{join(where, name)}: unknown field (allowed: {names})", "unknown_field")
    for name in required:
        if name not in value:
            raise BadRequest(f"{join(where, name)}: required field is missing", "missing_field")
    for name, item in value.items():
        if not allowed[name].accepts(item):
            raise BadRequest(f"{join(where, name)}: expected {allowed[name].description}", "wrong_type")
    return value


def is_name(value: object) -> bool:
    """True for a name that can be a path segment: letters, digits, '.', '_' and '-', 1 to 63 of them."""
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def name_of(value: str, where: str) -> str:
    """``value`` if :func:`is_name`; else 400 saying what a name is."""
    if not is_name(value):
        raise BadRequest(
            f"{where}: expected 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", "invalid_value"
        )
    return value


def join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
