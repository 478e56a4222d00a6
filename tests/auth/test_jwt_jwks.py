"""Issuer keys from a JWKS served over HTTP on loopback: kid selection, refresh, rate limit."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from davgate.auth.jwks import JwksKeys, parse_jwks
from davgate.auth.jwt import InvalidToken, JwtPolicy, JwtVerifier
from davgate.auth.keys import UsersFile
from tests.auth.conftest import FakeClock
from tests.auth.jwt_keys import ALICE, BOB, claims, key, token, write_users


def jwk(private: Any, kid: str, **extra: Any) -> dict[str, Any]:
    public = private.public_key()
    writer = (
        RSAAlgorithm if isinstance(public, rsa.RSAPublicKey)
        else ECAlgorithm if isinstance(public, ec.EllipticCurvePublicKey)
        else OKPAlgorithm
    )  # fmt: skip
    return {**writer.to_jwk(public, as_dict=True), "kid": kid, **extra}


class JwksServer:
    """A JWKS on http(s)://127.0.0.1:<port>/jwks.json; tests change ``keys`` and read ``hits``.

    With ``tls`` (a server-side context) it is served over HTTPS.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def users(tmp_path: Path) -> UsersFile:
    """Alice has her own Ed25519 key; Bob's entry has an RSA key of his own."""
    return UsersFile(write_users(tmp_path / "users.json", {ALICE: key("ed25519"), BOB: key("rsa")}))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def verifier(users: UsersFile, keys: JwksKeys) -> JwtVerifier:
    return JwtVerifier(users, JwtPolicy(), keys, cache_ttl=0)


def issuer_key(number: int = 0) -> Any:
    return key("ec-p256", 10 + number)


def test_token_with_kid_is_verified_with_the_jwks_key(jwks_server: JwksServer, users: UsersFile) -> None:
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    keys = JwksKeys(jwks_server.url)
    identity = verifier(users, keys).authenticate(token(issuer_key(), claims(ALICE), kid="k1"))
    assert identity.user == ALICE
    assert jwks_server.hits == 1


def test_token_with_kid_is_not_verified_with_the_users_own_key(jwks_server: JwksServer, users: UsersFile) -> None:
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    with pytest.raises(InvalidToken, match="not accepted for this key"):
        verifier(users, JwksKeys(jwks_server.url)).authenticate(token(key("ed25519"), claims(ALICE), kid="k1"))


def test_issuer_token_still_needs_a_user_in_the_users_file(jwks_server: JwksServer, users: UsersFile) -> None:
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    text = token(issuer_key(), claims("mallory@example.org"), kid="k1")
    with pytest.raises(InvalidToken, match="not in the users file"):
        verifier(users, JwksKeys(jwks_server.url)).authenticate(text)


def test_user_without_key_in_a_jwks_token_is_not_needed(jwks_server: JwksServer, users: UsersFile) -> None:
    """Tokens without a kid still use the user's own key when a JWKS is configured."""
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    assert verifier(users, JwksKeys(jwks_server.url)).authenticate(token(key("rsa"), claims(BOB))).user == BOB


def test_unknown_kid_fetches_again_once_the_rate_limit_allows(
    jwks_server: JwksServer, users: UsersFile, clock: FakeClock
) -> None:
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    keys = JwksKeys(jwks_server.url, refresh=3600, min_interval=10, clock=clock)
    check = verifier(users, keys)
    assert check.authenticate(token(issuer_key(), claims(ALICE), kid="k1")).user == ALICE
    jwks_server.keys.append(jwk(issuer_key(1), "k2"))  # the issuer rotates its keys
    rotated = token(issuer_key(1), claims(ALICE), kid="k2")
    with pytest.raises(InvalidToken, match="unknown key id"):
        check.authenticate(rotated)  # within 10 s of the last fetch: no new fetch
    assert jwks_server.hits == 1
    clock.advance(10)
    assert check.authenticate(rotated).user == ALICE
    assert jwks_server.hits == 2


def test_made_up_kids_cannot_hammer_the_issuer(jwks_server: JwksServer, users: UsersFile, clock: FakeClock) -> None:
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    keys = JwksKeys(jwks_server.url, refresh=3600, min_interval=10, clock=clock)
    check = verifier(users, keys)
    for number in range(50):
        with pytest.raises(InvalidToken, match="unknown key id"):
            check.authenticate(token(issuer_key(), claims(ALICE), kid=f"made-up-{number}"))
        clock.advance(0.1)
    assert jwks_server.hits == 1
    clock.advance(10)
    with pytest.raises(InvalidToken):
        check.authenticate(token(issuer_key(), claims(ALICE), kid="made-up-again"))
    assert jwks_server.hits == 2


def test_keys_are_refreshed_periodically(jwks_server: JwksServer, users: UsersFile, clock: FakeClock) -> None:
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    keys = JwksKeys(jwks_server.url, refresh=300, min_interval=10, clock=clock)
    check = verifier(users, keys)
    text = token(issuer_key(), claims(ALICE), kid="k1")
    assert check.authenticate(text).user == ALICE
    jwks_server.keys = [jwk(issuer_key(1), "k2")]  # k1 withdrawn
    clock.advance(299)
    assert check.authenticate(text).user == ALICE
    clock.advance(1)
    with pytest.raises(InvalidToken, match="unknown key id"):
        check.authenticate(text)
    assert jwks_server.hits == 2


def test_failed_fetch_keeps_the_known_keys(
    jwks_server: JwksServer, users: UsersFile, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    jwks_server.keys = [jwk(issuer_key(), "k1")]
    keys = JwksKeys(jwks_server.url, refresh=300, min_interval=10, clock=clock)
    check = verifier(users, keys)
    text = token(issuer_key(), claims(ALICE), kid="k1")
    check.authenticate(text)
    jwks_server.status = 503
    clock.advance(300)
    assert check.authenticate(text).user == ALICE
    assert jwks_server.hits == 2
    assert "cannot be fetched, keeping 1 known keys: HTTP 503" in caplog.text


def test_unreachable_jwks_refuses_issuer_tokens(users: UsersFile) -> None:
    keys = JwksKeys("http://127.0.0.1:9/jwks.json", timeout=2)  # discard port: nothing listens
    with pytest.raises(InvalidToken, match="unknown key id"):
        verifier(users, keys).authenticate(token(issuer_key(), claims(ALICE), kid="k1"))


def test_jwks_from_a_file(tmp_path: Path, users: UsersFile) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(key("rsa", 10), "r1", alg="PS256")]}))
    check = verifier(users, JwksKeys(path))
    assert check.authenticate(token(key("rsa", 10), claims(ALICE), algorithm="PS256", kid="r1")).user == ALICE
    with pytest.raises(InvalidToken, match="RS256 is not accepted"):  # the JWK's alg narrows it
        check.authenticate(token(key("rsa", 10), claims(ALICE), kid="r1"))


def test_hmac_token_naming_an_oct_key_is_refused(jwks_server: JwksServer, users: UsersFile) -> None:
    jwks_server.keys = [{"kty": "oct", "kid": "s1", "k": "c2VjcmV0"}]
    import jwt as pyjwt

    text = pyjwt.encode(claims(ALICE), "secret-secret-secret-secret-secret", algorithm="HS256", headers={"kid": "s1"})
    with pytest.raises(InvalidToken, match="HS256 is never accepted"):
        verifier(users, JwksKeys(jwks_server.url)).authenticate(text)


def test_parse_jwks_takes_only_public_signature_keys() -> None:
    private_jwk = json.loads(OKPAlgorithm.to_jwk(key("ed25519", 10)))
    document = {
        "keys": [
            jwk(issuer_key(), "good"),
            {"kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"},
            {**private_jwk, "kid": "private"},
            {k: v for k, v in jwk(issuer_key(), "x").items() if k != "kid"},
            jwk(issuer_key(), "encryption", use="enc"),
            jwk(issuer_key(), "mismatch", alg="RS256"),
            jwk(issuer_key(), "good"),
            {"kty": "RSA", "kid": "broken", "n": "AQAB"},
            "not an object",
        ]
    }
    keys, problems = parse_jwks(json.dumps(document).encode(), "test")
    assert list(keys) == ["good"]
    assert keys["good"].algorithms == frozenset({"ES256"})
    assert len(problems) == 8
    with pytest.raises(ValueError):
        parse_jwks(b'{"no": "keys"}', "test")
