"""Checksums (RFC 3230) in-process: Want-Digest on GET and HEAD, Digest and Content-MD5 on PUT."""

from __future__ import annotations

import base64
import hashlib
import zlib
from pathlib import Path

import pytest

from davgate.digest import ALGORITHMS, parse_digest, parse_want_digest
from tests.wsgi.client import Client

BODY = b"The quick brown fox jumps over the lazy dog\n" * 1000


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sha256(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest())


def md5(data: bytes) -> str:
    return b64(hashlib.md5(data).digest())


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data):08x}"


def digest_header(response) -> dict[str, str]:
    items = (item.split("=", 1) for item in response.headers.get("digest", "").split(",") if item)
    return {name: value for name, value in items}


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app) -> Client:
    return Client(app)


# --- header parsing --------------------------------------------------------------------


def test_want_digest_orders_by_q_and_drops_unknown_and_q0() -> None:
    assert parse_want_digest("sha-256") == ["sha-256"]
    assert parse_want_digest("md5;q=0.3, SHA-256;q=1, crc32c, adler32;q=0") == ["SHA-256", "md5"]
    assert parse_want_digest("adler32, sha-256;q=0.5, md5;q=bogus") == ["adler32", "md5", "sha-256"]
    assert parse_want_digest("unixsum, , ;q=1") == []


def test_digest_values_are_decoded_and_checked() -> None:
    raw = hashlib.sha256(b"x").digest()
    assert parse_digest(f"SHA-256={b64(raw)}, crc32c=AAAA") == {"sha-256": raw}
    assert parse_digest("adler32=0001") == {"adler32": b"\x00\x00\x00\x01"}
    for bad in ("sha-256=abc", "md5", "adler32=xyz", "adler32=123456789", f"md5={b64(raw)}"):
        with pytest.raises(ValueError):
            parse_digest(bad)


def test_algorithm_vectors() -> None:
    def value(name: str, data: bytes) -> str:
        hasher = ALGORITHMS[name].make()
        hasher.update(data)
        return ALGORITHMS[name].encode(hasher.digest())

    assert value("adler32", b"Wikipedia") == "11e60398"
    assert value("md5", b"") == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert value("sha-256", b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert value("sha", b"abc") == b64(hashlib.sha1(b"abc").digest())


# --- GET and HEAD ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_want_digest_is_answered(client: Client, method: str) -> None:
    assert client.put("/data/f.txt", BODY).status == 201
    got = client.request(method, "/data/f.txt", headers={"Want-Digest": "sha-256"})
    assert got.status == 200
    assert got.headers["digest"] == f"sha-256={sha256(BODY)}"
    both = client.request(method, "/data/f.txt", headers={"Want-Digest": "MD5;q=0.5, ADLER32"})
    assert digest_header(both) == {"ADLER32": adler32(BODY), "MD5": md5(BODY)}


def test_range_gets_the_digest_of_the_whole_content(client: Client) -> None:
    client.put("/data/f.txt", BODY)
    got = client.get("/data/f.txt", Range="bytes=0-9", Want_Digest="sha-256")
    assert got.status == 206 and got.body == BODY[:10]
    assert got.headers["digest"] == f"sha-256={sha256(BODY)}"


def test_no_digest_unless_wanted_and_known(client: Client) -> None:
    client.put("/data/f.txt", BODY)
    assert "digest" not in client.get("/data/f.txt").headers
    assert "digest" not in client.get("/data/f.txt", Want_Digest="unixsum").headers
    assert "digest" not in client.get("/data/", Want_Digest="sha-256").headers
    assert client.get("/data/missing", Want_Digest="sha-256").status == 404


def test_digest_is_computed_once_per_version_and_kept_in_the_state_store(app, client: Client) -> None:
    client.put("/data/f.txt", BODY)
    first = client.get("/data/f.txt", Want_Digest="sha-256")
    etag = first.headers["etag"].strip('"')
    assert app.store.get_digests("/data/f.txt", etag) == {"sha-256": sha256(BODY)}
    app.store.put_digests("/data/f.txt", etag, {"sha-256": "from-the-store"})
    assert client.get("/data/f.txt", Want_Digest="sha-256").headers["digest"] == "sha-256=from-the-store"
    client.put("/data/f.txt", b"new content")
    again = client.get("/data/f.txt", Want_Digest="sha-256")
    assert again.headers["digest"] == f"sha-256={sha256(b'new content')}"
    assert app.store.get_digests("/data/f.txt", etag) == {}  # the old version's digests are gone


def test_digest_of_a_file_changed_outside_davgate(client: Client, mount_root) -> None:
    client.put("/data/f.txt", BODY)
    client.get("/data/f.txt", Want_Digest="md5")
    (mount_root("/data") / "f.txt").write_bytes(b"changed behind our back")
    assert client.get("/data/f.txt", Want_Digest="md5").headers["digest"] == f"md5={md5(b'changed behind our back')}"


# --- PUT ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": f"sha-256={sha256(BODY)}"},
        {"Digest": f"SHA-256={sha256(BODY)}, md5={md5(BODY)}, adler32={adler32(BODY).upper()}"},
        {"Content-MD5": md5(BODY)},
        {"Digest": "crc32c=AAAAAA=="},  # unknown: cannot be checked, so not refused
    ],
)
def test_put_with_a_matching_checksum_is_written(client: Client, mount_root, headers: dict) -> None:
    assert client.put("/data/ok.bin", BODY, **headers).status == 201
    assert (mount_root("/data") / "ok.bin").read_bytes() == BODY


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": f"sha-256={sha256(b'other')}"},
        {"Digest": f"sha-256={sha256(BODY)},md5={md5(b'other')}"},
        {"Digest": "adler32=00000001"},
        {"Content-MD5": md5(b"other")},
        {"Content-MD5": md5(BODY), "Digest": f"md5={md5(b'other')}"},
    ],
)
def test_put_with_a_wrong_checksum_is_refused_and_nothing_is_written(client: Client, mount_root, headers: dict) -> None:
    root = mount_root("/data")
    refused = client.put("/data/new.bin", BODY, **headers)
    assert refused.status == 400, refused.text
    assert not (root / "new.bin").exists()
    client.put("/data/old.bin", b"old content")
    assert client.put("/data/old.bin", BODY, **headers).status == 400
    assert (root / "old.bin").read_bytes() == b"old content"
    assert sorted(p.name for p in root.iterdir()) == ["old.bin"]  # no temporary file left


@pytest.mark.parametrize("headers", [{"Digest": "sha-256=not base64!"}, {"Digest": "md5"}, {"Content-MD5": "short"}])
def test_put_with_a_malformed_checksum_is_refused(client: Client, mount_root, headers: dict) -> None:
    refused = client.put("/data/new.bin", BODY, **headers)
    assert refused.status == 400 and "checksum" in refused.text
    assert not (mount_root("/data") / "new.bin").exists()


def test_a_verified_put_seeds_the_digest_of_the_new_version(app, client: Client) -> None:
    put = client.put("/data/f.bin", BODY, Digest=f"sha-256={sha256(BODY)}")
    etag = put.headers["etag"].strip('"')
    assert app.store.get_digests("/data/f.bin", etag) == {"sha-256": sha256(BODY)}
    assert (
        client.request("HEAD", "/data/f.bin", headers={"Want-Digest": "sha-256"}).headers["digest"]
        == f"sha-256={sha256(BODY)}"
    )


def test_digest_on_a_read_only_mount_and_the_root(make_app, mount_root) -> None:
    mount_root("/archive").mkdir(parents=True)
    (mount_root("/archive") / "r.txt").write_bytes(BODY)
    client = Client(
        make_app(mounts={"/archive": {"type": "local", "root": str(mount_root("/archive")), "readonly": True}})
    )
    assert client.get("/archive/r.txt", Want_Digest="adler32").headers["digest"] == f"adler32={adler32(BODY)}"
    assert "digest" not in client.get("/", Want_Digest="adler32").headers


def test_anonymous_cannot_read_digests_of_what_it_cannot_read(app) -> None:
    anonymous = Client(app, user=None)
    assert anonymous.get("/data/f.txt", Want_Digest="sha-256").status == 401


def test_files_named_like_temporaries_are_not_hashed(client: Client, tmp_path: Path) -> None:
    assert client.get("/data/.davgate-upload-1@x~y", Want_Digest="sha-256").status in (403, 404)
