"""The DISPEL cache on real davgate processes: kept across a restart, counted across processes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import requests
import tifffile

from davgate.dispel import counters
from davgate.state.sqlite import SqliteStateStore
from tests.helpers import ServerLauncher
from tests.live.test_dispel import AUTH, config, small_store, templates  # noqa: F401 - fixtures

URL = "/dispel/tiffstore/312/20181129/1/10-250-20-180"
NS = "urn:davgate:dispel"


def test_results_are_kept_across_a_restart(
    serve: ServerLauncher,
    tmp_path: Path,
    htpasswd_file: Path,
    templates: Path,  # noqa: F811 - the fixture imported above
    small_store: Path,  # noqa: F811
) -> None:
    shared = config(tmp_path, htpasswd_file, small_store)
    first = serve(shared, workers=2)
    made = requests.get(first.url + URL, auth=AUTH, timeout=30)
    assert made.status_code == 200, made.text
    expected = tifffile.imread(small_store / "tiffstore/312/20181129.tif", key=1)[20:180, 10:250]
    assert np.array_equal(tifffile.imread(io.BytesIO(made.content)), expected)
    first.stop()

    second = serve(shared)
    unchanged = requests.get(second.url + URL, auth=AUTH, headers={"If-None-Match": made.headers["ETag"]}, timeout=30)
    assert unchanged.status_code == 304
    again = requests.get(second.url + URL, auth=AUTH, timeout=30)
    assert again.status_code == 200 and again.content == made.content and again.headers["ETag"] == made.headers["ETag"]
    part = requests.get(second.url + URL, auth=AUTH, headers={"Range": "bytes=8-1031"}, timeout=30)
    assert part.status_code == 206 and part.content == made.content[8:1032]
    shown = requests.request("PROPFIND", second.url + URL, auth=AUTH, headers={"Depth": "0"}, timeout=30)
    assert shown.status_code == 207
    assert f"{NS}" in shown.text and ">2</" in shown.text and ">312/20181129/1/10-250-20-180.tif</" in shown.text
    second.stop()  # graceful: the hits counted in memory are written

    with SqliteStateStore(tmp_path / "state.db") as store:
        assert counters(store) == {"tiffstore": {"executions": 1, "cache_hits": 2, "cache_misses": 1}}
        (entry,) = store.cache_entries()
        assert entry.hits == 2 and entry.size == len(made.content)
