"""The S3 cache backend on the real Ceph RGW: the backend contract, whole-or-nothing uploads, a server using it."""

from __future__ import annotations

import io
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tifffile

from davgate import errors
from davgate.config.schema import S3Cache
from davgate.dispel import counters
from davgate.dispel.cache_s3 import S3Backend
from davgate.state.sqlite import SqliteStateStore
from tests.dispel.backend_contract import CacheBackendContract, stage
from tests.helpers import ServerLauncher
from tests.live.test_dispel import AUTH, config, small_store, templates  # noqa: F401 - fixtures
from tests.rgw import SESSION_BUCKET, Rgw

MiB = 1024 * 1024
URL = "/dispel/tiffstore/312/20181129/2/10-250-20-180"


def cache_options(rgw: Rgw, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A cache section for the session's gateway, with a fresh prefix."""
    return {
        "type": "s3",
        "endpoint": rgw.endpoint,
        "bucket": SESSION_BUCKET,
        "access_key": rgw.env["AWS_ACCESS_KEY_ID"],
        "secret_key": rgw.env["AWS_SECRET_ACCESS_KEY"],
        "prefix": f"dispel-{uuid.uuid4().hex[:12]}/",
        "staging": str(tmp_path / "staging"),
        "timeout": 5.0,
        **overrides,
    }


def objects(rgw: Rgw, prefix: str) -> dict[str, int]:
    listed = rgw.client().list_objects_v2(Bucket=SESSION_BUCKET, Prefix=prefix)
    return {item["Key"][len(prefix) :]: item["Size"] for item in listed.get("Contents", ())}


def unfinished_uploads(rgw: Rgw, prefix: str) -> list[str]:
    listed = rgw.client().list_multipart_uploads(Bucket=SESSION_BUCKET, Prefix=prefix)
    return [upload["Key"] for upload in listed.get("Uploads", ())]


class TestS3Backend(CacheBackendContract):
    @pytest.fixture
    def backend(self, rgw: Rgw, tmp_path: Path) -> S3Backend:
        backend = S3Backend(S3Cache(**cache_options(rgw, tmp_path, part_size=5 * MiB)))
        backend.start()
        yield backend
        backend.close()

    def test_a_multipart_blob_is_invisible_until_complete(self, backend: S3Backend, rgw: Rgw) -> None:
        data = np.random.default_rng(8).bytes(11 * MiB)  # three parts of 5 MiB
        sent, release = threading.Event(), threading.Event()
        upload_part = backend.client.upload_part

        def slow_part(**request: Any) -> Any:
            answer = upload_part(**request)
            if request["PartNumber"] == 1:
                sent.set()
                assert release.wait(30)
            return answer

        backend.client.upload_part = slow_part
        committing = threading.Thread(target=backend.commit, args=("feed", stage(backend, data)))
        committing.start()
        try:
            assert sent.wait(30)
            assert backend.stat("feed") is None and unfinished_uploads(rgw, backend.prefix) == [backend.prefix + "feed"]
        finally:
            release.set()
            committing.join()
        assert backend.stat("feed").size == len(data)
        with backend.open("feed") as stream:
            stream.seek(10 * MiB)
            assert stream.read() == data[10 * MiB :]

    def test_a_failed_upload_leaves_nothing(self, backend: S3Backend, rgw: Rgw) -> None:
        upload_part = backend.client.upload_part

        def failing_part(**request: Any) -> Any:
            if request["PartNumber"] == 2:
                raise ConnectionResetError("the network went away")
            return upload_part(**request)

        backend.client.upload_part = failing_part
        staged = stage(backend, bytes(11 * MiB))
        with pytest.raises(ConnectionResetError):
            backend.commit("dead", staged)
        assert backend.stat("dead") is None and not Path(staged).exists()
        assert unfinished_uploads(rgw, backend.prefix) == []

    def test_a_missing_bucket_is_a_configuration_error(self, rgw: Rgw, tmp_path: Path) -> None:
        missing = S3Backend(S3Cache(**cache_options(rgw, tmp_path, bucket=rgw.new_bucket_name())))
        with pytest.raises(ValueError, match=r"^cache.bucket: bucket '.*' does not exist at .*create_bucket: true"):
            missing.start()
        created = S3Backend(S3Cache(**cache_options(rgw, tmp_path, bucket=rgw.new_bucket_name(), create_bucket=True)))
        created.start()
        assert created.stat("0000") is None

    def test_an_unreachable_gateway_is_unavailable(self, tmp_path: Path, rgw: Rgw) -> None:
        gone = S3Backend(S3Cache(**cache_options(rgw, tmp_path, endpoint="http://127.0.0.1:9", timeout=1.0, retries=0)))
        with pytest.raises(errors.Unavailable):
            gone.stat("0000")


def test_a_server_caches_results_in_the_bucket(
    serve: ServerLauncher,
    rgw: Rgw,
    tmp_path: Path,
    htpasswd_file: Path,
    templates: Path,  # noqa: F811 - the fixture imported above
    small_store: Path,  # noqa: F811
) -> None:
    cache = cache_options(rgw, tmp_path, max_bytes=250_000)
    shared = {**config(tmp_path, htpasswd_file, small_store), "cache": cache}
    server = serve(shared, workers=2)
    made = requests.get(server.url + URL, auth=AUTH, timeout=30)
    assert made.status_code == 200, made.text
    expected = tifffile.imread(small_store / "tiffstore/312/20181129.tif", key=2)[20:180, 10:250]
    assert np.array_equal(tifffile.imread(io.BytesIO(made.content)), expected)
    key = made.headers["ETag"].strip('"')
    assert objects(rgw, cache["prefix"]) == {key: len(made.content)}
    server.stop()

    server = serve(shared)  # a restart: served from the bucket
    assert (
        requests.get(
            server.url + URL, auth=AUTH, headers={"If-None-Match": made.headers["ETag"]}, timeout=30
        ).status_code
        == 304
    )
    for _ in range(2):
        again = requests.get(server.url + URL, auth=AUTH, timeout=30)
        assert again.status_code == 200 and again.content == made.content
    part = requests.get(
        server.url + URL, auth=AUTH, headers={"Range": "bytes=1000-60999", "Accept-Encoding": "gzip"}, timeout=30
    )
    assert part.status_code == 206 and part.content == made.content[1000:61000]
    assert "Content-Encoding" not in part.headers

    bad = bytearray(made.content)
    bad[5000] ^= 0xFF
    rgw.client().put_object(Bucket=SESSION_BUCKET, Key=cache["prefix"] + key, Body=bytes(bad))  # corrupted in place
    assert requests.get(server.url + URL, auth=AUTH, timeout=30).content == made.content
    rgw.client().delete_object(Bucket=SESSION_BUCKET, Key=cache["prefix"] + key)  # lost
    assert requests.get(server.url + URL, auth=AUTH, timeout=30).content == made.content

    for x in range(4):  # each about 77 kB: the bound keeps three
        window = f"/dispel/tiffstore/312/20181129/0/{x}-{x + 240}-0-160"
        assert requests.get(server.url + window, auth=AUTH, timeout=30).status_code == 200
    stored = objects(rgw, cache["prefix"])
    assert len(stored) == 3 and sum(stored.values()) <= 250_000
    server.stop()
    with SqliteStateStore(tmp_path / "state.db") as store:
        assert sorted(e.key for e in store.cache_entries()) == sorted(stored)
        assert counters(store)["tiffstore"]["executions"] == 3 + 4
