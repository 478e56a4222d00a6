"""davgate.auth.hashes: every htpasswd format against fixed vectors."""

from __future__ import annotations

import pytest

from davgate.auth.hashes import (
    UnsupportedHash,
    describe_scheme,
    hash_password,
    is_supported,
    verify_hash,
)
from tests.auth.conftest import LONG_PASSWORD, PASSWORD, VECTORS


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_matches_its_password(name: str) -> None:
    password, stored = VECTORS[name]
    assert is_supported(stored)
    assert verify_hash(stored, password) is True


@pytest.mark.parametrize("name", sorted(VECTORS))
@pytest.mark.parametrize("change", ["append", "prepend", "drop_last", "swap_case", "empty"])
def test_vector_refuses_other_passwords(name: str, change: str) -> None:
    password, stored = VECTORS[name]
    other = {
        "append": password + "!",
        "prepend": "!" + password,
        "drop_last": password[:-1],
        "swap_case": password.swapcase(),
        "empty": "",
    }[change]
    # bcrypt ignores bytes after the 72nd, as Apache's htpasswd does: for the
    # long vector, changes past that point are accepted (and tested below).
    ignored = name == "bcrypt-long" and change in ("append", "drop_last")
    assert verify_hash(stored, other) is ignored


def test_bcrypt_uses_only_72_bytes_like_apache() -> None:
    _, stored = VECTORS["bcrypt-long"]
    assert verify_hash(stored, LONG_PASSWORD[:72]) is True
    assert verify_hash(stored, LONG_PASSWORD[:71]) is False


def test_other_schemes_use_the_whole_password() -> None:
    _, stored = VECTORS["apr1-long"]
    assert verify_hash(stored, LONG_PASSWORD[:72]) is False


@pytest.mark.parametrize(
    ("stored", "scheme"),
    [
        ("secret1", "unknown"),  # plain text (htpasswd -p)
        ("zmZB2hLF2ql2w", "unknown"),  # DES crypt (htpasswd -d)
        ("", "unknown"),
        ("$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "$1$"),
        ("{SSHA}5fXJ/1zwW2y4Q2TqXfUjNqKxk7dLfvYu", "{SSHA}"),
        ("$2x$04$v3EszipUEtYTYqrscspQNe1YUu3lO0PUUuHNL4GpmL1ycA2HKPmpu", "$2x$"),
        ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "argon2"),
        ("$y$j9T$salt$hash", "yescrypt"),
    ],
)
def test_unknown_schemes_are_refused_by_name(stored: str, scheme: str) -> None:
    with pytest.raises(UnsupportedHash) as info:
        verify_hash(stored, "secret1")
    assert scheme in info.value.scheme
    assert not is_supported(stored)


@pytest.mark.parametrize("plain", ["secret1", "$ecret$ign", "{looks}like-a-scheme"])
def test_refusal_never_repeats_the_stored_text(plain: str) -> None:
    with pytest.raises(UnsupportedHash) as info:
        verify_hash(plain, plain)
    assert plain not in str(info.value)
    assert plain not in describe_scheme(plain)


@pytest.mark.parametrize(
    "stored",
    [
        "$2y$05$short",
        "$2b$99$iChxLIC8En5JQ3ToRWgcGOgCZuDLseU6GWZNC6ZuG9dM1OXdms.Ee",
        "$apr1$t0ntH6dj$tooshort",
        "$apr1$t0ntH6dj",
        "$apr1$saltsaltsalt$d3hih8ef/kNK.bhxuwi6p/",
        "{SHA}not base64!",
        "$5$salt",
        "$5$rounds=999$salt$5bWTjwGSnvVmRMv94qevEKzj5I.3sRzY3T/wMH4v9i6",
        "$6$rounds=0100000$salt$x",
        "$6$rounds=99999999$salt$x",
    ],
)
def test_malformed_hashes_of_known_schemes_are_refused(stored: str) -> None:
    with pytest.raises(UnsupportedHash):
        verify_hash(stored, PASSWORD)


@pytest.mark.parametrize(("scheme", "prefix"), [("bcrypt", "$2b$12$"), ("apr1", "$apr1$"), ("sha", "{SHA}")])
def test_hash_password_round_trip(scheme: str, prefix: str) -> None:
    stored = hash_password(PASSWORD, scheme)
    assert stored.startswith(prefix)
    assert verify_hash(stored, PASSWORD) is True
    assert verify_hash(stored, PASSWORD + "x") is False


def test_default_scheme_is_bcrypt() -> None:
    assert hash_password("pw").startswith("$2b$")


@pytest.mark.parametrize("scheme", ["bcrypt", "apr1"])
def test_salted_schemes_use_a_fresh_salt(scheme: str) -> None:
    assert hash_password(PASSWORD, scheme) != hash_password(PASSWORD, scheme)


def test_hash_password_refuses_what_would_not_verify() -> None:
    with pytest.raises(ValueError, match="72 bytes"):
        hash_password("é" * 37)  # 74 bytes
    with pytest.raises(ValueError, match="NUL"):
        hash_password("a\0b", "sha")
    with pytest.raises(ValueError, match="unknown hash scheme"):
        hash_password(PASSWORD, "md5")
