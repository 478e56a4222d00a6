"""The configuration of tokens and access rules: what is refused at start, and how it is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from davgate.config import ConfigError, parse_config
from tests.auth.jwt_keys import ALICE, key, write_users


@pytest.fixture
def base(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "data").mkdir()
    users = write_users(tmp_path / "users.json", {ALICE: key("ed25519")})
    return {
        "auth": {"jwt": {"users": str(users)}},
        "mounts": {"/data": {"type": "local", "root": str(tmp_path / "data")}},
        "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
    }


def error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "davgate.yaml")
    return str(caught.value)


def test_defaults(base: dict[str, Any]) -> None:
    jwt = parse_config(base).auth.jwt
    assert jwt is not None
    assert (jwt.audience, jwt.issuer, jwt.algorithms, jwt.jwks) == (None, None, None, None)
    assert (jwt.max_lifetime, jwt.leeway, jwt.jwks_refresh) == (86400, 30, 300)


def test_all_keys(base: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    base["auth"]["jwt"].update(
        audience="davgate", issuer="https://ee", algorithms=["EdDSA", "PS256"], max_lifetime=600,
        leeway=5, jwks=str(tmp_path / "jwks.json"), jwks_refresh=60,
    )  # fmt: skip
    base["groups"] = {"staff": [ALICE, "bob"]}
    base["mounts"]["/data"]["access"] = {"read": ["*"], "write": ["@staff"]}
    config = parse_config(base)
    assert config.auth.jwt.algorithms == ("EdDSA", "PS256")
    assert config.auth.jwt.jwks == tmp_path / "jwks.json"
    assert config.groups == {"staff": (ALICE, "bob")}
    assert config.mounts["/data"].access.write == ("@staff",)


@pytest.mark.parametrize("algorithm", ["HS256", "none", "HS512", "RSA"])
def test_symmetric_and_none_algorithms_cannot_be_configured(base: dict[str, Any], algorithm: str) -> None:
    base["auth"]["jwt"]["algorithms"] = ["RS256", algorithm]
    message = error(base)
    assert message.startswith("auth.jwt.algorithms[1]: expected one of RS256, RS384")
    assert message.endswith("(davgate.yaml)")


def test_empty_algorithm_list_is_refused(base: dict[str, Any]) -> None:
    base["auth"]["jwt"]["algorithms"] = []
    assert error(base).startswith("auth.jwt.algorithms: name at least one algorithm")


@pytest.mark.parametrize(
    ("name", "value"), [("leeway", -1), ("leeway", 3600), ("max_lifetime", 0), ("jwks_refresh", 0)]
)
def test_times_are_bounded(base: dict[str, Any], name: str, value: int) -> None:
    base["auth"]["jwt"][name] = value
    assert error(base).startswith(f"auth.jwt.{name}: expected ")


def test_jwks_is_a_url_or_an_existing_file(base: dict[str, Any]) -> None:
    base["auth"]["jwt"]["jwks"] = "https://issuer.example.org/jwks.json"
    assert parse_config(base).auth.jwt.jwks == "https://issuer.example.org/jwks.json"
    base["auth"]["jwt"]["jwks"] = "missing.json"
    message = error(base)
    assert message.startswith("auth.jwt.jwks: expected an http(s) URL, got 'missing.json' or file ")
    assert "does not exist" in message


def test_users_file_must_be_readable_and_valid(base: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "users.json").write_text("{broken")
    assert error(base).startswith(f"auth.jwt.users: {tmp_path / 'users.json'}: not valid JSON")
    (tmp_path / "users.json").write_text('{"a@b": {"publicKey": "bm90IGEga2V5"}}')
    assert "user 'a@b': publicKey is not a valid PEM public key" in error(base)
    (tmp_path / "users.json").unlink()
    assert error(base).startswith("auth.jwt.users: file ")


def test_undefined_group_is_named(base: dict[str, Any]) -> None:
    base["mounts"]["/data"]["access"] = {"read": ["@ghosts"]}
    assert error(base).startswith("mounts./data.access.read[0]: group 'ghosts' is not defined in groups")


def test_groups_hold_users_only(base: dict[str, Any]) -> None:
    base["groups"] = {"staff": ["@other"]}
    assert error(base).startswith("groups.staff[0]: a group holds user names")
    base["groups"] = {"st@ff": ["a"]}
    assert error(base).startswith("groups.st@ff: a group name is printable text")


def test_unknown_access_key_is_named(base: dict[str, Any]) -> None:
    base["mounts"]["/data"]["access"] = {"reed": ["*"]}
    assert error(base).startswith("mounts./data.access.reed: unknown key (allowed: read, write)")
