"""Results, in-process: exact data, outputs, exact errors, caching, conditional GET, Range, gzip."""

from __future__ import annotations

import gzip
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.dispel.conftest import SEED, Dispel, stack, write_stack
from tests.dispel.test_elements import decode_png

RESULT = "/dispel/tiffstore/312/20181129/3/10-250-20-180"
TESTS = "tests.dispel.elements_for_tests"


def expected_window(dispel: Dispel, layer: int = 3, rel: str = SEED) -> np.ndarray:
    return dispel.store.stacks[rel][layer, 20:180, 10:250]


def add_template(dispel: Dispel, name: str, *steps: str, time_limit: float | None = None) -> None:
    """A copy of tiffstore whose pipeline has extra steps (YAML flow mappings) after reading."""
    text = (dispel.templates / "tiffstore.yaml").read_text()
    text = text.replace('window: "{grid}"}\n', 'window: "{grid}"}\n' + "".join(f"  - {s}\n" for s in steps), 1)
    if time_limit is not None:
        text = text.replace("time_limit: 60", f"time_limit: {time_limit}")
    (dispel.templates / f"{name}.yaml").write_text(text)


class TestData:
    def test_the_tiff_is_exactly_the_window(self, dispel: Dispel) -> None:
        response = dispel.get(RESULT)
        assert response.status == 200
        assert response.headers["content-type"] == "image/tiff"
        window = expected_window(dispel)
        assert np.array_equal(tifffile.imread(io.BytesIO(response.body)), window)
        encoded = io.BytesIO()
        tifffile.imwrite(encoded, window, photometric="minisblack", metadata=None)
        assert response.body == encoded.getvalue()  # byte-exact
        assert dispel.get(RESULT + ".tif").body == response.body

    @pytest.mark.parametrize("rel", ["tiffstore/312/20190306.tif", "tiffstore/313/20181201.tif"])
    def test_strips_and_compressed_inputs(self, dispel: Dispel, rel: str) -> None:
        subject, date = rel.split("/")[1], rel.split("/")[2][:-4]
        response = dispel.get(f"/dispel/tiffstore/{subject}/{date}/1/5-77-9-90")
        assert np.array_equal(tifffile.imread(io.BytesIO(response.body)), dispel.store.stacks[rel][1, 9:90, 5:77])

    def test_npy(self, dispel: Dispel) -> None:
        response = dispel.get(RESULT + ".npy")
        assert response.status == 200 and response.headers["content-type"] == "application/x-npy"
        assert np.array_equal(np.load(io.BytesIO(response.body)), expected_window(dispel))

    def test_png_is_a_contrast_stretched_preview(self, dispel: Dispel) -> None:
        response = dispel.get(RESULT + ".png")
        assert response.status == 200 and response.headers["content-type"] == "image/png"
        preview = decode_png(response.body)
        assert preview.dtype == np.uint8 and preview.shape == (160, 240)
        assert preview.min() == 0 and preview.max() == 255
        window = expected_window(dispel).astype(float)
        assert np.corrcoef(preview.ravel(), window.ravel())[0, 1] > 0.95

    def test_json_statistics_and_csv(self, dispel: Dispel) -> None:
        stats = json.loads(dispel.get(RESULT + ".json").body)
        assert stats["shape"] == [160, 240] and stats["max"] == int(expected_window(dispel).max())
        rows = dispel.get(RESULT + ".csv").body.decode().splitlines()
        assert len(rows) == 160 and rows[0].split(",")[0] == str(expected_window(dispel)[0, 0])

    def test_headers(self, dispel: Dispel) -> None:
        headers = dispel.get(RESULT).headers
        assert headers["content-disposition"] == 'inline; filename="312_20181129_layer3_10-250-20-180.tif"'
        assert headers["accept-ranges"] == "bytes"
        assert len(headers["etag"].strip('"')) == 64


class TestErrors:
    @pytest.mark.parametrize(
        ("path", "status", "reason"),
        [
            ("/dispel/nope/312", 404, "404 Not Found: unknown template 'nope'"),
            ("/dispel/tiffstore/31a/20181129/3/0-1-0-1", 400, "400 Bad Request: parameter 'subject': expected 1 to 32 digits, got '31a'"),
            ("/dispel/tiffstore/312/2018-11-29/3/0-1-0-1", 400, "400 Bad Request: parameter 'date': expected YYYYMMDD, got '2018-11-29'"),
            ("/dispel/tiffstore/312/20181129/-1/0-1-0-1", 400, "400 Bad Request: parameter 'layer': expected an integer >= 0, got '-1'"),
            ("/dispel/tiffstore/312/20181129/3/0-1200-0", 400,
             "400 Bad Request: parameter 'grid': expected x0-x1-y0-y1 (whole numbers with x0 < x1 and y0 < y1), got '0-1200-0'"),
            ("/dispel/tiffstore/312/20181129/3/0-1-0-1/2", 400,
             ("400 Bad Request: expected 4 parameters: /dispel/tiffstore/<subject>/<date>/<layer>/<x0-x1-y0-y1>"
              "[.tif|.png|.npy|.json|.csv]; got 5")),
            ("/dispel/tiffstore/999/20181129/3/0-1-0-1", 404, "404 Not Found: input not found: tiffstore/999/20181129.tif"),
            ("/dispel/tiffstore/312/20200101/3/0-1-0-1", 404, "404 Not Found: input not found: tiffstore/312/20200101.tif"),
            ("/dispel/tiffstore/312/20181129/5/0-1-0-1", 400,
             "400 Bad Request: parameter 'layer': 5 is out of bounds; the input has 5 pages (0-4)"),
            ("/dispel/tiffstore/312/20181129/3/0-301-0-10", 400,
             "400 Bad Request: parameter 'grid': window 0-301-0-10 exceeds the 300 x 200 pixels of page 3"),
            ("/dispel/tiffstore/312/20181129/3/0-99999999999999-0-10", 400,
             "400 Bad Request: parameter 'grid': expected x0-x1-y0-y1 (whole numbers with x0 < x1 and y0 < y1), got '0-99999999999999-0-10'"),
        ],
    )  # fmt: skip
    def test_exact_status_and_one_line_reason(self, dispel: Dispel, path: str, status: int, reason: str) -> None:
        response = dispel.get(path)
        assert response.status == status
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.text == reason + "\n"
        assert dispel.executions() == 0

    def test_execution_failure_is_500(self, dispel: Dispel) -> None:
        add_template(dispel, "broken", f"{{element: '{TESTS}:boom'}}")
        response = dispel.get("/dispel/broken/312/20181129/3/0-10-0-10")
        assert response.status == 500
        assert (
            response.text
            == f"500 Internal Server Error: element {TESTS}:boom failed: ValueError: boom went the element\n"
        )

    def test_an_element_may_refuse_with_400(self, dispel: Dispel) -> None:
        add_template(dispel, "picky", f"{{element: '{TESTS}:refuse'}}")
        response = dispel.get("/dispel/picky/312/20181129/3/0-10-0-10")
        assert response.status == 400 and response.text == "400 Bad Request: this element refuses every window\n"

    def test_timeout_is_504_and_the_server_goes_on(self, dispel: Dispel) -> None:
        add_template(dispel, "slow", f"{{element: '{TESTS}:sleep', seconds: 30}}", time_limit=0.5)
        response = dispel.get("/dispel/slow/312/20181129/3/0-10-0-10")
        assert response.status == 504
        assert response.text == "504 Gateway Timeout: template slow ran longer than its time limit of 0.5 s\n"
        assert dispel.get(RESULT).status == 200

    def test_an_invalid_template_is_500(self, dispel: Dispel) -> None:
        (dispel.templates / "bad.yaml").write_text("parameters: []\n")
        response = dispel.get("/dispel/bad/1")
        assert response.status == 500 and "template 'bad' is invalid: parameters:" in response.text

    @pytest.mark.parametrize(
        ("method", "path", "headers"),
        [
            ("PUT", RESULT, {}),
            ("PUT", "/dispel/tiffstore/new.txt", {}),
            ("DELETE", RESULT, {}),
            ("DELETE", "/dispel/tiffstore/312/", {}),
            ("MKCOL", "/dispel/tiffstore/new/", {}),
            ("PROPPATCH", RESULT, {}),
            ("LOCK", RESULT, {}),
            ("MOVE", RESULT, {"Destination": "http://127.0.0.1/data/moved.tif"}),
            ("COPY", "/data/in.txt", {"Destination": "http://127.0.0.1/dispel/tiffstore/in.txt"}),
            ("MOVE", "/data/in.txt", {"Destination": "http://127.0.0.1/dispel/in.txt"}),
        ],
    )
    def test_writes_are_refused(self, dispel: Dispel, method: str, path: str, headers: dict) -> None:
        assert dispel.client.put("/data/in.txt", b"data").status in (201, 204)
        response = dispel.client.request(
            method, path, b"<x/>" if method in ("PUT", "PROPPATCH", "LOCK") else b"", headers
        )
        assert response.status == 403, response.text
        assert response.text == "403 Forbidden: /dispel is read-only: DISPEL paths cannot be written\n"
        assert dispel.get("/data/in.txt").body == b"data"

    def test_a_folder_is_not_copied_out(self, dispel: Dispel) -> None:
        response = dispel.client.request(
            "COPY", "/dispel/tiffstore/312/", headers={"Destination": "http://127.0.0.1/data/all"}
        )
        assert response.status == 403
        assert (
            response.text == "403 Forbidden: /dispel/tiffstore/312/ is a DISPEL folder: copy its results one by one\n"
        )
        assert dispel.executions() == 0

    def test_options(self, dispel: Dispel) -> None:
        assert dispel.client.request("OPTIONS", RESULT).status == 200


class TestHttp:
    def test_conditional_get_runs_nothing(self, dispel: Dispel) -> None:
        etag = dispel.get(RESULT).headers["etag"]
        assert dispel.executions() == 1
        dispel.app.mounts["/dispel"].engine.cache.backend.delete(etag.strip('"'))  # even if evicted meanwhile
        response = dispel.get(RESULT, **{"If-None-Match": etag})
        assert response.status == 304 and response.body == b""
        assert dispel.executions() == 1

    def test_range(self, dispel: Dispel) -> None:
        whole = dispel.get(RESULT).body
        response = dispel.get(RESULT, Range="bytes=100-1099")
        assert response.status == 206 and response.body == whole[100:1100]
        assert response.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
        tail = dispel.get(RESULT, Range="bytes=-10")
        assert tail.status == 206 and tail.body == whole[-10:]
        csv = dispel.get(RESULT + ".csv").body
        ranged = dispel.get(RESULT + ".csv", Range="bytes=0-9", **{"Accept-Encoding": "gzip"})
        assert ranged.status == 206 and ranged.body == csv[:10]  # never content-encoded
        assert "content-encoding" not in ranged.headers

    @pytest.mark.parametrize("output", ["json", "csv"])
    def test_gzip_for_text_like_results(self, dispel: Dispel, output: str) -> None:
        plain = dispel.get(f"{RESULT}.{output}")
        response = dispel.get(f"{RESULT}.{output}", **{"Accept-Encoding": "gzip, deflate"})
        assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(response.body) == plain.body
        assert response.headers["etag"] != plain.headers["etag"]
        assert int(response.headers["content-length"]) == len(response.body) < len(plain.body)
        head = dispel.client.request("HEAD", f"{RESULT}.{output}", headers={"Accept-Encoding": "gzip"})
        assert (
            head.status == 200
            and head.body == b""
            and head.headers["content-length"] == response.headers["content-length"]
        )
        assert head.headers["content-encoding"] == "gzip"
        refused = dispel.get(f"{RESULT}.{output}", **{"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers and refused.body == plain.body
        assert dispel.executions() == 1

    @pytest.mark.parametrize("output", ["tif", "png", "npy"])
    def test_binary_results_go_uncompressed(self, dispel: Dispel, output: str) -> None:
        response = dispel.get(f"{RESULT}.{output}", **{"Accept-Encoding": "gzip"})
        assert response.status == 200 and "content-encoding" not in response.headers
        assert "vary" not in response.headers
        assert response.body == dispel.get(f"{RESULT}.{output}").body
        assert not [e for e in dispel.app.store.cache_entries() if e.key.endswith(".gz")]

    def test_head_and_copy_out_of_dispel(self, dispel: Dispel, tmp_path: Path) -> None:
        head = dispel.client.request("HEAD", RESULT)
        assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 0
        copy = dispel.client.request("COPY", RESULT, headers={"Destination": "http://127.0.0.1/data/window.tif"})
        assert copy.status == 201, copy.text
        assert (tmp_path / "data" / "window.tif").read_bytes() == dispel.get(RESULT).body
        assert dispel.executions() == 1


class TestCaching:
    def test_warm_requests_run_nothing(self, dispel: Dispel) -> None:
        first = dispel.get(RESULT).body
        for _ in range(3):
            assert dispel.get(RESULT).body == first
        assert dispel.executions() == 1
        dispel.app.mounts["/dispel"].engine.cache.flush()
        entry = dispel.app.store.cache_entries()[0]
        assert (entry.template, entry.params, entry.size, entry.hits) == (
            "tiffstore",
            "312/20181129/3/10-250-20-180.tif",
            len(first),
            3,
        )

    def test_sixteen_concurrent_identical_requests_run_once(self, dispel: Dispel) -> None:
        add_template(dispel, "slowish", f"{{element: '{TESTS}:sleep', seconds: 0.5}}")
        path = "/dispel/slowish/312/20181129/3/10-250-20-180"
        barrier, bodies = threading.Barrier(16), []

        def get() -> None:
            barrier.wait()
            bodies.append(dispel.get(path).body)

        threads = [threading.Thread(target=get) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(bodies) == 16 and len(set(bodies)) == 1 and bodies[0]
        assert dispel.executions() == 1

    def test_a_changed_template_makes_new_results_and_drops_old_ones(self, dispel: Dispel) -> None:
        old = dispel.get(RESULT).headers["etag"]
        template = dispel.templates / "tiffstore.yaml"
        template.write_text(template.read_text().replace("time_limit: 60", "time_limit: 59"))
        os.utime(template, ns=(1, 1))
        new = dispel.get(RESULT).headers["etag"]
        assert new != old and dispel.executions() == 2
        assert [e.key for e in dispel.app.store.cache_entries()] == [new.strip('"')]

    def test_a_changed_input_is_recomputed(self, dispel: Dispel) -> None:
        first = dispel.get(RESULT)
        replacement = stack(99, 5, 200, 300)
        write_stack(dispel.store.root / SEED, replacement, tile=(64, 64))
        second = dispel.get(RESULT)
        assert second.headers["etag"] != first.headers["etag"]
        assert np.array_equal(tifffile.imread(io.BytesIO(second.body)), replacement[3, 20:180, 10:250])
        assert dispel.executions() == 2

    def test_a_corrupted_blob_is_recomputed(self, dispel: Dispel, make_dispel) -> None:
        good = dispel.get(RESULT)
        key = good.headers["etag"].strip('"')
        blob = dispel.cache / key[:2] / key
        blob.write_bytes(bytes(len(good.body)))
        fresh = make_dispel()  # another process: it has not checked this blob yet
        again = fresh.get(RESULT)
        assert again.body == good.body and fresh.executions() == 2

    def test_lru_eviction_keeps_the_cache_bounded(self, make_dispel) -> None:
        dispel = make_dispel(cache={"max_bytes": 250_000})
        for x in range(6):  # each about 77 kB
            assert dispel.get(f"/dispel/tiffstore/312/20181129/0/{x}-{x + 240}-0-160").status == 200
        assert dispel.app.store.counter("dispel_cache_bytes") <= 250_000
        sizes = sum(p.stat().st_size for p in dispel.cache.glob("??/*"))
        assert sizes <= 250_000 and len(dispel.app.store.cache_entries()) == 3
        assert dispel.get("/dispel/tiffstore/312/20181129/0/5-245-0-160").status == 200
        assert dispel.executions() == 6  # the newest is still cached
