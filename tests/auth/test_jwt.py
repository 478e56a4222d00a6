"""JWT verification: every key type, and every way a token must be refused."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa

from davgate.auth.jwt import InvalidToken, JwtPolicy, JwtVerifier, looks_like_jwt
from davgate.auth.keys import UsersFile, load_public_key, parse_users
from davgate.auth.tokens import public_pem
from tests.auth.conftest import FakeClock
from tests.auth.jwt_keys import ALICE, BOB, KINDS, claims, key, token, write_users


class WallClock(FakeClock):
    """A wall clock (seconds since the epoch) that moves only when told."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
def users_path(tmp_path: Path) -> Path:
    return write_users(tmp_path / "users.json", {ALICE: key("ed25519"), BOB: key("rsa")})


def verifier_for(path: Path, clock: WallClock, **policy) -> JwtVerifier:
    return JwtVerifier(UsersFile(path, check_interval=0), JwtPolicy(**policy), clock=clock)


@pytest.fixture
def verifier(users_path: Path, wall: WallClock) -> JwtVerifier:
    return verifier_for(users_path, wall)


def refused(verifier: JwtVerifier, text: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier.authenticate(text)
    return caught.value.reason


# -- accepted -------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_key_type_verifies_with_its_own_algorithm(tmp_path: Path, wall: WallClock, kind: str) -> None:
    path = write_users(tmp_path / "users.json", {ALICE: key(kind)})
    identity = verifier_for(path, wall).authenticate(token(key(kind), claims(now=wall.now)))
    assert identity.user == ALICE
    assert identity.scopes is None
    assert identity.expires == wall.now + 300


@pytest.mark.parametrize("algorithm", ["RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_keys_accept_the_whole_rsa_family(verifier: JwtVerifier, wall: WallClock, algorithm: str) -> None:
    text = token(key("rsa"), claims(BOB, now=wall.now), algorithm=algorithm)
    assert verifier.authenticate(text).user == BOB


def test_ed448_keys_use_eddsa(tmp_path: Path, wall: WallClock) -> None:
    private = ed448.Ed448PrivateKey.generate()
    path = write_users(tmp_path / "users.json", {ALICE: private})
    assert verifier_for(path, wall).authenticate(token(private, claims(now=wall.now))).user == ALICE


def test_users_file_may_hold_a_plain_pem(tmp_path: Path, wall: WallClock) -> None:
    path = write_users(tmp_path / "users.json", {ALICE: key("ec-p256")}, raw_pem=True)
    assert verifier_for(path, wall).authenticate(token(key("ec-p256"), claims(now=wall.now))).user == ALICE


@pytest.mark.parametrize("claim", ["user", "sub"])
def test_user_claim_falls_back_to_user_then_sub(verifier: JwtVerifier, wall: WallClock, claim: str) -> None:
    payload = claims(now=wall.now)
    del payload["email"]
    payload[claim] = ALICE
    assert verifier.authenticate(token(key("ed25519"), payload)).user == ALICE


def test_email_wins_over_user_and_sub(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = claims(BOB, now=wall.now, user=ALICE, sub=ALICE)
    assert verifier.authenticate(token(key("rsa"), payload)).user == BOB
    assert "not accepted for this key" in refused(verifier, token(key("ed25519"), payload))


def test_scopes_come_from_the_scope_claim(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = claims(now=wall.now, scope="openid storage.read:/data")
    assert verifier.authenticate(token(key("ed25519"), payload)).scopes == ("openid", "storage.read:/data")
    listed = claims(now=wall.now, scope=["storage.modify:/data"])
    assert verifier.authenticate(token(key("ed25519"), listed)).scopes == ("storage.modify:/data",)


def test_configured_audience_and_issuer_are_accepted(users_path: Path, wall: WallClock) -> None:
    verifier = verifier_for(users_path, wall, audience="davgate", issuer="https://ee.example.org")
    payload = claims(now=wall.now, aud=["other", "davgate"], iss="https://ee.example.org")
    assert verifier.authenticate(token(key("ed25519"), payload)).user == ALICE


def test_leeway_allows_small_clock_skew(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = {"email": ALICE, "iat": wall.now + 20, "nbf": wall.now + 20, "exp": wall.now - 20 + 300}
    assert verifier.authenticate(token(key("ed25519"), payload)).user == ALICE
    expired_a_moment_ago = {"email": ALICE, "iat": wall.now - 100, "exp": wall.now - 10}
    assert verifier.authenticate(token(key("ed25519"), expired_a_moment_ago)).user == ALICE


# -- refused: algorithms and keys -----------------------------------------


def test_alg_none_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    unsigned = jwt.encode(claims(now=wall.now), None, algorithm="none")
    assert refused(verifier, unsigned) == "algorithm none is never accepted"
    with_signature = unsigned + "c2ln"
    assert refused(verifier, with_signature) == "algorithm none is never accepted"


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_key_confusion_with_the_public_key_as_hmac_secret_is_refused(
    users_path: Path, wall: WallClock, algorithm: str
) -> None:
    """The classic attack: sign with HMAC using the (public) PEM as the secret."""
    secret = public_pem(key("rsa"))
    forged = _hmac_token(claims(BOB, now=wall.now), secret, algorithm)
    assert refused(verifier_for(users_path, wall), forged) == f"algorithm {algorithm} is never accepted"
    base64_secret = base64.b64encode(secret)
    forged = _hmac_token(claims(BOB, now=wall.now), base64_secret, algorithm)
    assert refused(verifier_for(users_path, wall), forged) == f"algorithm {algorithm} is never accepted"


def _hmac_token(payload: dict, secret: bytes, algorithm: str) -> str:
    """HMAC-signed token made by hand: PyJWT itself refuses PEM secrets."""
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": algorithm, "typ": "JWT"}).encode())
    body = part(json.dumps(payload).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    signature = hmac.new(secret, f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{part(signature)}"


def test_algorithm_of_another_family_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    """An Ed25519 user's token signed with RS256 (by anyone) is refused before any check."""
    text = token(key("rsa"), claims(ALICE, now=wall.now))
    assert refused(verifier, text) == "algorithm RS256 is not accepted for this key"


def test_ec_curve_pins_the_algorithm(tmp_path: Path, wall: WallClock) -> None:
    path = write_users(tmp_path / "users.json", {ALICE: key("ec-p256")})
    header_says_es384 = _resign_header(token(key("ec-p256"), claims(now=wall.now)), "ES384")
    assert "not accepted" in refused(verifier_for(path, wall), header_says_es384)


def _resign_header(text: str, algorithm: str) -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": algorithm}).encode()).rstrip(b"=").decode()
    return header + text[text.index(".") :]


def test_configuration_narrows_the_algorithms(users_path: Path, wall: WallClock) -> None:
    verifier = verifier_for(users_path, wall, algorithms=frozenset({"PS256"}))
    assert verifier.authenticate(token(key("rsa"), claims(BOB, now=wall.now), algorithm="PS256")).user == BOB
    assert "not accepted" in refused(verifier, token(key("rsa"), claims(BOB, now=wall.now)))
    assert "not accepted" in refused(verifier, token(key("ed25519"), claims(now=wall.now)))


def test_wrong_key_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    assert refused(verifier, token(key("ed25519", 1), claims(now=wall.now))) == "bad signature"


def test_other_users_key_is_refused(tmp_path: Path, wall: WallClock) -> None:
    """Bob signs a token naming Alice with his own registered key: not Alice's key, refused."""
    path = write_users(tmp_path / "users.json", {ALICE: key("ed25519"), BOB: key("ed25519", 1)})
    assert refused(verifier_for(path, wall), token(key("ed25519", 1), claims(ALICE, now=wall.now))) == "bad signature"


def test_unknown_user_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    text = token(key("ed25519"), claims("mallory@example.org", now=wall.now))
    assert refused(verifier, text) == "user is not in the users file"


def test_token_without_a_user_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = claims(now=wall.now)
    payload["email"] = ""
    assert "names no user" in refused(verifier, token(key("ed25519"), payload))


def test_tampered_payload_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    head, _, rest = token(key("ed25519"), claims(now=wall.now, scope="storage.read:/a")).partition(".")
    _, _, signature = rest.partition(".")
    widened = (
        base64.urlsafe_b64encode(json.dumps(claims(now=wall.now, scope="storage.modify:/")).encode())
        .rstrip(b"=")
        .decode()
    )
    assert refused(verifier, f"{head}.{widened}.{signature}") == "bad signature"


# -- refused: times, audience, issuer -------------------------------------


def test_expired_token_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = {"email": ALICE, "iat": wall.now - 600, "exp": wall.now - 31}
    assert refused(verifier, token(key("ed25519"), payload)) == "token has expired"


def test_token_expires_while_the_clock_moves(verifier: JwtVerifier, wall: WallClock) -> None:
    text = token(key("ed25519"), claims(now=wall.now, ttl=60))
    assert verifier.authenticate(text).user == ALICE  # and now cached
    wall.advance(60 + 30)
    assert refused(verifier, text) == "token has expired"


def test_missing_exp_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    assert refused(verifier, token(key("ed25519"), {"email": ALICE, "iat": wall.now})) == "missing claim exp"


def test_non_numeric_exp_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = {"email": ALICE, "exp": str(int(wall.now) + 60)}
    assert refused(verifier, token(key("ed25519"), payload)) == "claim exp is not a number"


def test_nbf_in_the_future_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = claims(now=wall.now, nbf=wall.now + 120)
    assert refused(verifier, token(key("ed25519"), payload)) == "token is not valid yet (nbf)"


def test_iat_in_the_future_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    payload = {"email": ALICE, "iat": wall.now + 120, "exp": wall.now + 300}
    assert refused(verifier, token(key("ed25519"), payload)) == "token is issued in the future (iat)"


def test_lifetime_longer_than_the_maximum_is_refused(users_path: Path, wall: WallClock) -> None:
    verifier = verifier_for(users_path, wall, max_lifetime=3600)
    assert verifier.authenticate(token(key("ed25519"), claims(now=wall.now, ttl=3600))).user == ALICE
    assert "lifetime exceeds 3600 s" in refused(verifier, token(key("ed25519"), claims(now=wall.now, ttl=3601)))
    no_iat = {"email": ALICE, "exp": wall.now + 7200}
    assert "lifetime exceeds" in refused(verifier, token(key("ed25519"), no_iat))


def test_wrong_or_missing_audience_is_refused(users_path: Path, wall: WallClock) -> None:
    verifier = verifier_for(users_path, wall, audience="davgate")
    assert refused(verifier, token(key("ed25519"), claims(now=wall.now, aud="other"))) == "wrong audience (aud)"
    assert refused(verifier, token(key("ed25519"), claims(now=wall.now))) == "missing claim aud"


def test_token_for_an_audience_is_refused_when_none_is_configured(verifier: JwtVerifier, wall: WallClock) -> None:
    assert refused(verifier, token(key("ed25519"), claims(now=wall.now, aud="other"))) == "wrong audience (aud)"


def test_wrong_or_missing_issuer_is_refused(users_path: Path, wall: WallClock) -> None:
    verifier = verifier_for(users_path, wall, issuer="https://ee.example.org")
    assert refused(verifier, token(key("ed25519"), claims(now=wall.now, iss="https://evil"))) == "wrong issuer (iss)"
    assert refused(verifier, token(key("ed25519"), claims(now=wall.now))) == "missing claim iss"


def test_kid_is_ignored_without_a_jwks(verifier: JwtVerifier, wall: WallClock) -> None:
    """Without issuer keys a kid selects nothing: the user's own key decides."""
    assert verifier.authenticate(token(key("ed25519"), claims(now=wall.now), kid="whatever")).user == ALICE


# -- refused: malformed ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a token",
        "eyJhbGciOiJFZERTQSJ9",
        "eyJhbGciOiJFZERTQSJ9.e30",
        "eyJ!!!.e30.sig",
        "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.c2ln",  # payload is not JSON
        "eyJub3QganNvbg.e30.c2ln",  # header is not JSON (eyJ... but garbage)
        "eyJhbGciOiJFZERTQSJ9.WzFd.c2ln",  # payload is a list
        "eyJ" + "a" * 20000 + ".e30.c2ln",
    ],
)
def test_malformed_tokens_are_refused(verifier: JwtVerifier, text: str) -> None:
    assert refused(verifier, text) == "malformed token"


def test_header_without_alg_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    text = _resign_header(token(key("ed25519"), claims(now=wall.now)), "x").replace(
        base64.urlsafe_b64encode(b'{"alg": "x"}').rstrip(b"=").decode(),
        base64.urlsafe_b64encode(b'{"typ": "JWT"}').rstrip(b"=").decode(),
    )
    assert refused(verifier, text) == "algorithm ? is never accepted"


def test_scope_claim_of_the_wrong_type_is_refused(verifier: JwtVerifier, wall: WallClock) -> None:
    text = token(key("ed25519"), claims(now=wall.now, scope={"storage.read": "/"}))
    assert "scope claim" in refused(verifier, text)


def test_looks_like_jwt() -> None:
    assert looks_like_jwt(token(key("ed25519")))
    assert not looks_like_jwt("wonderland")
    assert not looks_like_jwt("eyJ.a.b.c")


# -- refusals are logged without the token --------------------------------


def test_refusal_is_logged_with_user_and_reason_but_not_the_token(
    verifier: JwtVerifier, wall: WallClock, caplog: pytest.LogCaptureFixture
) -> None:
    text = token(key("ed25519", 1), claims(now=wall.now))
    with caplog.at_level(logging.DEBUG):
        refused(verifier, text)
        verifier.authenticate(token(key("ed25519"), claims(now=wall.now)))
    assert "token refused for user 'alice@example.org' (bad signature)" in caplog.text
    assert text not in caplog.text
    assert text.split(".")[2] not in caplog.text


# -- cache ----------------------------------------------------------------


def test_cache_is_dropped_when_the_users_key_changes(users_path: Path, verifier: JwtVerifier, wall: WallClock) -> None:
    text = token(key("ed25519"), claims(now=wall.now))
    assert verifier.authenticate(text).user == ALICE
    write_users(users_path, {ALICE: key("ed25519", 1), BOB: key("rsa")})
    _touch_later(users_path)
    assert refused(verifier, text) == "bad signature"


def test_cache_is_dropped_when_the_user_is_removed(users_path: Path, verifier: JwtVerifier, wall: WallClock) -> None:
    text = token(key("ed25519"), claims(now=wall.now))
    assert verifier.authenticate(text).user == ALICE
    write_users(users_path, {BOB: key("rsa")})
    _touch_later(users_path)
    assert refused(verifier, text) == "user is not in the users file"


def test_cache_is_bounded(users_path: Path, wall: WallClock) -> None:
    verifier = JwtVerifier(UsersFile(users_path), JwtPolicy(), clock=wall, cache_size=2)
    texts = [token(key("ed25519"), claims(now=wall.now, jti=str(i))) for i in range(3)]
    for text in texts:
        verifier.authenticate(text)
    assert len(verifier._cache) == 2


def _touch_later(path: Path) -> None:
    """Make sure the file's signature changes even on a coarse-mtime file system."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


# -- users file -----------------------------------------------------------


def test_users_file_reload_adds_and_removes_users(users_path: Path, wall: WallClock) -> None:
    clock = FakeClock()
    users = UsersFile(users_path, check_interval=1.0, clock=clock)
    assert users.get(ALICE) is not None and users.get("carol@example.org") is None
    write_users(users_path, {"carol@example.org": key("ec-p256")})
    _touch_later(users_path)
    assert users.get(ALICE) is not None  # not checked again within the interval
    clock.advance(1.0)
    assert users.get(ALICE) is None
    assert users.get("carol@example.org") is not None


def test_broken_users_file_fails_closed_until_fixed(users_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    users = UsersFile(users_path, check_interval=1.0, clock=clock)
    users_path.write_text("{not json")
    clock.advance(1.0)
    assert users.get(ALICE) is None
    assert "cannot be used until it is fixed" in caplog.text
    write_users(users_path, {ALICE: key("ed25519")})
    _touch_later(users_path)
    clock.advance(1.0)
    assert users.get(ALICE) is not None


def test_users_file_entries_are_checked() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private_pem = key("ed25519").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    document = {
        "ok@x": {"name": "ok", "publicKey": base64.b64encode(public_pem(key("ed25519"))).decode()},
        "weak@x": {"name": "w", "publicKey": public_pem(weak).decode()},
        "private@x": {"name": "p", "publicKey": private_pem.decode()},
        "garbage@x": {"name": "g", "publicKey": "bm90IGEga2V5"},
        "curve@x": {"publicKey": public_pem(ec.generate_private_key(ec.SECP256K1())).decode()},
        "nokey@x": {"name": "n"},
        "notobject@x": "key",
    }
    users, problems = parse_users(json.dumps(document).encode(), "users.json")
    assert set(users) == {"ok@x", "nokey@x"}
    assert users["nokey@x"].key is None
    text = "\n".join(problems)
    assert "1024 bits" in text and "private key" in text and "not a valid PEM" in text
    assert "secp256k1" in text and "expected an object" in text
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_users(b"[", "users.json")
    with pytest.raises(ValueError, match="JSON object"):
        parse_users(b"[]", "users.json")


def test_user_without_a_key_cannot_use_own_tokens(tmp_path: Path, wall: WallClock) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({ALICE: {"name": "a"}}))
    assert refused(verifier_for(path, wall), token(key("ed25519"), claims(now=wall.now))) == "user has no public key"


def test_certificate_pem_gives_its_public_key() -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    private = key("ec-p256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )  # fmt: skip
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    assert load_public_key(pem).public_numbers() == private.public_key().public_numbers()
