"""``auth.jwt.jwks`` from the config file of a real davgate, served over HTTPS by a real issuer.

The issuer's certificate comes from a CA made here (tests/ops/tls_files.py):
davgate refuses the issuer until it trusts that CA (``SSL_CERT_FILE``), then
verifies tokens by ``kid``, and follows a key rotation within
``auth.jwt.jwks_refresh``: the new key is taken, the withdrawn one refused.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.auth.jwt_keys import ALICE, claims, key, token, write_users
from tests.auth.test_jwt_jwks import JwksServer, jwk
from tests.helpers import Server, ServerLauncher, wait_until
from tests.ops.tls_files import write_self_signed

REFRESH = 2  # auth.jwt.jwks_refresh, seconds
TIMEOUT = 10


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed CA certificate for 127.0.0.1 and its key, which the issuer serves with."""
    folder = tmp_path / "ca"
    folder.mkdir()
    return write_self_signed(folder)


@pytest.fixture
def issuer(ca: tuple[Path, Path]) -> Iterator[JwksServer]:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*ca)
    server = JwksServer(tls)
    yield server
    server.close()


def status(server: Server, private: Any, kid: str) -> int:
    bearer = token(private, claims(ALICE), kid=kid)
    reply = requests.get(f"{server.url}/data/", headers={"Authorization": f"Bearer {bearer}"}, timeout=TIMEOUT)
    return reply.status_code


def test_jwks_over_https_from_the_config_follows_a_key_rotation(
    serve: ServerLauncher, tmp_path: Path, ca: tuple[Path, Path], issuer: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = key("ec-p256", 30), key("ec-p256", 31)
    issuer.keys = [jwk(old, "2026-a")]
    (tmp_path / "data").mkdir()
    users = write_users(tmp_path / "users.json", {ALICE: key("ed25519", 30)})  # the user; issuer keys come by kid
    config = {
        "auth": {"jwt": {"users": users, "jwks": issuer.url, "jwks_refresh": REFRESH}},
        "mounts": {"/data": {"type": "local", "root": tmp_path / "data"}},
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
    }
    untrusted = serve(config)
    assert status(untrusted, old, "2026-a") == 401  # the issuer's CA is not trusted yet
    assert "certificate verify failed" in untrusted.log_text()
    untrusted.stop()
    serve.servers.remove(untrusted)

    monkeypatch.setenv("SSL_CERT_FILE", str(ca[0]))
    server = serve(config)
    assert status(server, old, "2026-a") == 200
    assert status(server, key("ec-p256", 32), "2026-a") == 401  # a kid is no key: the signature must be the issuer's
    issuer.keys = [jwk(new, "2026-b")]  # rotation: the new key in, the old one withdrawn
    wait_until(
        lambda: status(server, old, "2026-a") == 401, timeout=2 * REFRESH + 3, message="the old key is still taken"
    )
    assert status(server, new, "2026-b") == 200
