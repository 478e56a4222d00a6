"""``davgate keygen`` and ``davgate token`` as a user runs them (subprocesses)."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from davgate.auth.jwt import JwtPolicy, JwtVerifier
from davgate.auth.keys import UsersFile

EMAIL = "ee@example.org"


def davgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "davgate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ec"])
def test_keygen_writes_a_key_pair_and_prints_the_users_file_entry(tmp_path: Path, kind: str) -> None:
    done = davgate("keygen", "--out", "ee", "--type", kind, "--email", EMAIL, "--name", "Engine", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    private, public = tmp_path / "ee", tmp_path / "ee.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    entry = json.loads(done.stdout)
    assert entry == {EMAIL: {"name": "Engine", "publicKey": base64.b64encode(public.read_bytes()).decode()}}


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert davgate("keygen", "--out", "k", cwd=tmp_path).returncode == 0
    first = (tmp_path / "k").read_bytes()
    again = davgate("keygen", "--out", "k", cwd=tmp_path)
    assert again.returncode == 1
    assert "exists (use --force" in again.stderr
    assert (tmp_path / "k").read_bytes() == first
    assert davgate("keygen", "--out", "k", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "k").read_bytes() != first


@pytest.mark.parametrize(("kind", "algorithm"), [("ed25519", "EdDSA"), ("rsa", "RS256"), ("ec", "ES256")])
def test_token_prints_only_a_token_that_davgate_accepts(tmp_path: Path, kind: str, algorithm: str) -> None:
    keygen = davgate("keygen", "--out", "ee", "--type", kind, "--email", EMAIL, cwd=tmp_path)
    (tmp_path / "users.json").write_text(keygen.stdout)
    done = davgate("token", "--key", "ee", "--email", EMAIL, "--aud", "davgate", "--ttl", "120", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and done.stderr == ""
    text = done.stdout.strip()
    verifier = JwtVerifier(UsersFile(tmp_path / "users.json"), JwtPolicy(audience="davgate"))
    identity = verifier.authenticate(text)
    assert identity.user == EMAIL
    import jwt

    assert jwt.get_unverified_header(text)["alg"] == algorithm
    claims = jwt.decode(text, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120 and claims["aud"] == "davgate"


def test_token_extra_claims(tmp_path: Path) -> None:
    davgate("keygen", "--out", "ee", cwd=tmp_path)
    args = ["--scope", "storage.read:/data", "--scope", "storage.create:/up", "--iss", "me", "--kid", "k1"]
    done = davgate("token", "--key", "ee", "--email", EMAIL, *args, cwd=tmp_path)
    import jwt

    text = done.stdout.strip()
    assert jwt.get_unverified_header(text)["kid"] == "k1"
    claims = jwt.decode(text, options={"verify_signature": False})
    assert claims["scope"] == "storage.read:/data storage.create:/up" and claims["iss"] == "me"
    assert claims["exp"] - claims["iat"] == 3600


def test_token_errors_are_one_line_on_stderr(tmp_path: Path) -> None:
    missing = davgate("token", "--key", "nowhere.pem", "--email", EMAIL, cwd=tmp_path)
    assert missing.returncode == 1 and missing.stdout == ""
    assert "cannot read nowhere.pem" in missing.stderr
    (tmp_path / "public.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    wrong = davgate("token", "--key", "public.pem", "--email", EMAIL, cwd=tmp_path)
    assert wrong.returncode == 1 and "not an unencrypted PEM private key" in wrong.stderr
    davgate("keygen", "--out", "ee", cwd=tmp_path)
    zero = davgate("token", "--key", "ee", "--email", EMAIL, "--ttl", "0", cwd=tmp_path)
    assert zero.returncode == 1 and "--ttl must be a positive" in zero.stderr
