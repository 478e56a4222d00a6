"""The micro-infrastructure description (the seed's JSON), checked field by field.

``POST /api/v1/infrastructure`` takes::

    {"name": "test-001", "namespace": "user-001", "location": "uva",
     "storageAdaptorContainers": [
        {"name": "mynativestorage", "type": "native", "expose": "webdav",
         "volume": {"name": "pv-001", "size": "1Gi"}},
        {"name": "lisa.surfsara.nl", "type": "sshfs", "expose": "webdav", "caches": [...],
         "user": "user", "host": "lisa.surfsara.nl", "port": 22, "path": "/nfs/scratch/user",
         "password": "..."},
        {"name": "ceph", "type": "s3", "endpoint": "http://...", "bucket": "b",
         "access_key": "...", "secret_key": "...", "region": "us-east-1", "prefix": ""}],
     "logicContainers": [
        {"name": "mydataStaging", "type": "query"},
        {"name": "myDav", "type": "webdav", "user": "user", "pass": "..."},
        {"name": "myDavWithTokens", "type": "webdav-jwt",
         "users": {"user@domain.nl": {"name": "name", "publicKey": "<base64 of a PEM>"}}}]}

:func:`parse` checks it and separates the secrets (sshfs passwords, webdav
passwords, S3 secret keys) from the rest, which is what is stored.
``namespace``, ``location``, ``expose``, ``caches`` and ``volume`` are
accepted and kept as the original system had them; they change nothing
here. Logic container types other than ``webdav``, ``webdav-jwt`` and
``query`` (``jupyter``, ...) are refused: davgate does not run them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from davgate.api.checks import BOOLEAN, INTEGER, LIST, OBJECT, TEXT, Kind, fields, name_of
from davgate.api.errors import BadRequest
from davgate.auth.keys import parse_users

__all__ = ["Adaptor", "InfraSpec", "Logic", "Secrets", "address_of", "parse", "readable"]

RESERVED_NAMES = frozenset({"api", "metrics", "healthz", "readyz"})
COMMON_ADAPTOR: dict[str, Kind] = {"expose": TEXT, "caches": LIST}
ADAPTOR_FIELDS: dict[str, tuple[dict[str, Kind], dict[str, Kind]]] = {
    "native": ({}, {"volume": OBJECT}),
    "sshfs": ({"user": TEXT, "host": TEXT, "password": TEXT}, {"path": TEXT, "port": INTEGER}),
    "s3": (
        {"endpoint": TEXT, "bucket": TEXT, "access_key": TEXT, "secret_key": TEXT},
        {"region": TEXT, "prefix": TEXT, "create_bucket": BOOLEAN},
    ),
}
LOGIC_FIELDS: dict[str, dict[str, Kind]] = {
    "webdav": {"user": TEXT, "pass": TEXT},
    "webdav-jwt": {"users": OBJECT},
    "query": {},
}
SECRET_FIELDS = {"sshfs": "password", "s3": "secret_key", "webdav": "pass"}


@dataclass(frozen=True)
class Adaptor:
    """A storage adaptor: mounted at ``/<infrastructure>/<name>/``."""

    name: str
    type: str
    options: dict[str, Any]  # the checked fields, secrets removed


def address_of(adaptor: Adaptor) -> tuple[str, int] | None:
    """The host and port an adaptor connects to (an sshfs host, an s3 endpoint), None for a native one."""
    o = adaptor.options
    if adaptor.type == "sshfs":
        return o["host"], o["port"]
    if adaptor.type == "s3":
        endpoint = urlsplit(o["endpoint"])
        return endpoint.hostname or "", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    return None


@dataclass(frozen=True)
class Logic:
    """An access method or service over the adaptors."""

    name: str
    type: str
    options: dict[str, Any]


@dataclass(frozen=True)
class InfraSpec:
    name: str
    adaptors: tuple[Adaptor, ...]
    logic: tuple[Logic, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # namespace, location

    def of_type(self, kind: str) -> list[Logic]:
        return [item for item in self.logic if item.type == kind]

    def adaptor(self, name: str) -> Adaptor | None:
        return next((item for item in self.adaptors if item.name == name), None)

    def to_json(self) -> str:
        """The stored form: what was sent, minus secrets, plus what replaced them."""
        return json.dumps({
            "name": self.name, **self.extra,
            "storageAdaptorContainers": [{"name": a.name, "type": a.type, **a.options} for a in self.adaptors],
            "logicContainers": [{"name": item.name, "type": item.type, **item.options} for item in self.logic],
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> InfraSpec:
        data = json.loads(text)
        adaptors = tuple(Adaptor(a.pop("name"), a.pop("type"), a) for a in data.pop("storageAdaptorContainers"))
        logic = tuple(Logic(item.pop("name"), item.pop("type"), item) for item in data.pop("logicContainers"))
        return cls(data.pop("name"), adaptors, logic, data)


def readable(text: str) -> InfraSpec | None:
    """The stored description ``text``, or None if it cannot be read (stored broken, or by an older version)."""
    try:
        return InfraSpec.from_json(text)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass
class Secrets:
    """The secrets of a description, by ``<type>/<container name>``; never stored as they are."""

    values: dict[str, str] = field(default_factory=dict)

    def pop(self, kind: str, name: str) -> str:
        return self.values.pop(f"{kind}/{name}")


def parse(body: Any) -> tuple[InfraSpec, Secrets]:
    """Check a description; raise :class:`BadRequest` naming the first problem."""
    top = fields(
        body, "", {"name": TEXT, "storageAdaptorContainers": LIST},
        {"namespace": TEXT, "location": TEXT, "logicContainers": LIST},
    )  # fmt: skip
    name = name_of(top["name"], "name")
    if name.lower() in RESERVED_NAMES:
        raise BadRequest(f"name: {name!r} is reserved", "invalid_value")
    secrets = Secrets()
    adaptors = tuple(
        adaptor(item, f"storageAdaptorContainers[{i}]", secrets)
        for i, item in enumerate(top["storageAdaptorContainers"])
    )
    logic = tuple(
        logic_container(item, f"logicContainers[{i}]", secrets) for i, item in enumerate(top.get("logicContainers", []))
    )
    if not adaptors:
        raise BadRequest("storageAdaptorContainers: at least one storage adaptor is needed", "invalid_value")
    unique([a.name for a in adaptors], "storageAdaptorContainers")
    unique([item.name for item in logic], "logicContainers")
    unique([item.options["user"] for item in logic if item.type == "webdav"], "logicContainers (webdav users)")
    extra: dict[str, Any] = {key: top[key] for key in ("namespace", "location") if key in top}
    return InfraSpec(name, adaptors, logic, extra), secrets


def adaptor(value: Any, where: str, secrets: Secrets) -> Adaptor:
    kind = kind_of(value, where, ADAPTOR_FIELDS)
    required, optional = ADAPTOR_FIELDS[kind]
    checked = dict(fields(value, where, {"name": TEXT, "type": TEXT, **required}, {**COMMON_ADAPTOR, **optional}))
    name = name_of(checked.pop("name"), f"{where}.name")
    checked.pop("type")
    keep_secret(kind, name, checked, secrets)
    if kind == "sshfs":
        check_sshfs(checked, where)
    if kind == "s3":
        check_endpoint(checked["endpoint"], f"{where}.endpoint")
    return Adaptor(name, kind, checked)


def check_endpoint(url: str, where: str) -> None:
    """An http(s) URL with a host (and a port, if any, that is a number)."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and url.isprintable() and parts.port != 0
    except ValueError:  # a port that is no number, a broken IPv6 literal
        usable = False
    if not usable:
        raise BadRequest(f"{where}: expected an http(s) URL", "invalid_value")


def check_sshfs(checked: dict[str, Any], where: str) -> None:
    for key in ("user", "host"):
        if not checked[key] or not checked[key].isprintable() or any(c in checked[key] for c in " @/"):
            raise BadRequest(f"{where}.{key}: expected a plain {key} name", "invalid_value")
    if not 0 < checked.setdefault("port", 22) < 65536:
        raise BadRequest(f"{where}.port: expected 1 to 65535", "invalid_value")
    checked.setdefault("path", ".")


def logic_container(value: Any, where: str, secrets: Secrets) -> Logic:
    kind = kind_of(value, where, LOGIC_FIELDS)
    checked = dict(fields(value, where, {"name": TEXT, "type": TEXT, **LOGIC_FIELDS[kind]}))
    name = name_of(checked.pop("name"), f"{where}.name")
    checked.pop("type")
    keep_secret(kind, name, checked, secrets)
    if kind == "webdav":
        user = checked["user"]
        if not user or ":" in user or not user.isprintable():
            raise BadRequest(f"{where}.user: expected a printable user name without ':'", "invalid_value")
    if kind == "webdav-jwt":
        check_users(checked["users"], f"{where}.users")
    return Logic(name, kind, checked)


def check_users(users: Mapping[str, Any], where: str) -> None:
    """The users-file format: every entry must be usable, or the call fails naming it."""
    try:
        _parsed, problems = parse_users(json.dumps(users).encode(), where)
    except ValueError as error:
        raise BadRequest(f"{where}: {error}", "invalid_value") from None
    if problems:
        raise BadRequest(f"{where}: {problems[0]}", "invalid_value")


def kind_of(value: Any, where: str, known: Mapping[str, Any]) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: expected an object", "wrong_type")
    if not isinstance(kind, str):
        raise BadRequest(f"{where}.type: {'required field is missing' if kind is None else 'expected a string'}",
                         "missing_field" if kind is None else "wrong_type")  # fmt: skip
    if kind not in known:
        raise BadRequest(
            f"{where}.type: {kind[:40]!r} is not supported (supported: {', '.join(known)})", "unsupported_type"
        )
    return kind


def keep_secret(kind: str, name: str, checked: dict[str, Any], secrets: Secrets) -> None:
    key = SECRET_FIELDS.get(kind)
    if key is not None:
        secrets.values[f"{kind}/{name}"] = checked.pop(key)


def unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadRequest(f"{where}: {name!r} appears twice", "invalid_value")
        seen.add(name)
