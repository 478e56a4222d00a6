"""DISPEL on real davgate processes: the seed's URL, time limits, single-flight across processes, plugins."""

from __future__ import annotations

import io
import re
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
import tifffile

from davgate.dispel import executions_total, stretch
from davgate.state.sqlite import SqliteStateStore
from tests.dispel.conftest import REPO, TIFFSTORE, decode_png, stack, write_stack
from tests.dispel.demo_store import demo_store_path
from tests.dispel.test_executor import write_huge
from tests.helpers import USERS, ServerLauncher
from tests.live.test_sftp import sftp_section
from tests.sshd import Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import

AUTH = ("alice", USERS["alice"])
SEED_URL = "/dispel/tiffstore/312/20181129/12/0-1200-0-400"
TESTS = "tests.dispel.elements_for_tests"


def config(tmp_path: Path, htpasswd: Path, source: Path, **dispel: object) -> dict:
    return {
        "auth": {"htpasswd": htpasswd},
        "mounts": {
            "/source": {"type": "local", "root": source, "readonly": True},
            "/dispel": {"type": "dispel", "templates": tmp_path / "templates", "source": "/source", **dispel},
        },
        "state": {"type": "sqlite", "path": tmp_path / "state.db"},
        "cache": {"type": "local", "root": tmp_path / "cache"},
    }


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "tiffstore.yaml").write_text(TIFFSTORE.read_text())
    return folder


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    write_stack(root / "tiffstore/312/20181129.tif", stack(1, 3, 200, 300), tile=(64, 64))
    return root


@pytest.fixture
def repo_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers (and their pipeline processes) can import the test elements."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def with_steps(templates: Path, name: str, *steps: str, time_limit: float = 60) -> None:
    text = TIFFSTORE.read_text().replace(
        'window: "{grid}"}\n', 'window: "{grid}"}\n' + "".join(f"  - {s}\n" for s in steps), 1
    )
    (templates / f"{name}.yaml").write_text(text.replace("time_limit: 60", f"time_limit: {time_limit}"))


def test_the_seeds_url_over_http(
    serve: ServerLauncher,
    tmp_path: Path,
    htpasswd_file: Path,
    templates: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    demo = demo_store_path(tmp_path_factory)
    server = serve(config(tmp_path, htpasswd_file, demo))
    response = requests.get(server.url + SEED_URL, auth=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/tiff"
    expected = tifffile.imread(demo / "tiffstore/312/20181129.tif", key=12)[0:400, 0:1200]
    assert np.array_equal(tifffile.imread(io.BytesIO(response.content)), expected)
    again = requests.get(
        server.url + SEED_URL, auth=AUTH, headers={"If-None-Match": response.headers["ETag"]}, timeout=30
    )
    assert again.status_code == 304
    listing = requests.request(
        "PROPFIND", server.url + "/dispel/tiffstore/312/20181129/", auth=AUTH, headers={"Depth": "1"}, timeout=30
    )
    assert listing.status_code == 207
    layers = re.findall(r"<D:href>/dispel/tiffstore/312/20181129/(\d+)/</D:href>", listing.text)
    assert layers == [str(i) for i in range(13)]
    preview = requests.get(server.url + SEED_URL + ".png", auth=AUTH, timeout=30)
    assert preview.status_code == 200 and preview.content[:8] == b"\x89PNG\r\n\x1a\n"
    with SqliteStateStore(tmp_path / "state.db") as store:
        assert executions_total(store) == 2
    assert requests.put(server.url + SEED_URL, data=b"x", auth=AUTH, timeout=30).status_code == 403


def test_a_runaway_gets_504_and_the_server_goes_on(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, templates: Path, small_store: Path, repo_on_path: None
) -> None:
    with_steps(templates, "runaway", f"{{element: '{TESTS}:sleep', seconds: 600}}", time_limit=1)
    server = serve(config(tmp_path, htpasswd_file, small_store, workers=1))
    response = requests.get(server.url + "/dispel/runaway/312/20181129/1/0-10-0-10", auth=AUTH, timeout=30)
    assert response.status_code == 504
    assert response.text == "504 Gateway Timeout: template runaway ran longer than its time limit of 1 s\n"
    fine = requests.get(server.url + "/dispel/tiffstore/312/20181129/1/0-10-0-10", auth=AUTH, timeout=30)
    assert fine.status_code == 200  # the only pipeline process was killed and replaced
    assert (
        requests.request("PROPFIND", server.url + "/", auth=AUTH, headers={"Depth": "1"}, timeout=30).status_code == 207
    )


def test_a_template_over_the_memory_limit_gets_507_and_the_server_goes_on(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, templates: Path, small_store: Path
) -> None:
    (small_store / "tiffstore/999").mkdir()
    write_huge(small_store / "tiffstore/999/20200101.tif", 16 * 1024)  # 512 MiB when decoded
    server = serve(config(tmp_path, htpasswd_file, small_store, workers=1, memory_limit=256 * 1024 * 1024))
    whole = "/dispel/tiffstore/999/20200101/0/0-16384-0-16384.npy"
    response = requests.get(server.url + whole, auth=AUTH, timeout=60)
    assert response.status_code == 507
    assert response.text == (
        "507 Insufficient Storage: element read_tiff needs more memory than a pipeline process may use "
        "(256 MiB, the dispel mount's memory_limit)\n"
    )
    fine = requests.get(server.url + "/dispel/tiffstore/312/20181129/1/0-10-0-10", auth=AUTH, timeout=30)
    assert fine.status_code == 200  # the pipeline process was replaced; the request worker lives on
    again = requests.get(server.url + whole, auth=AUTH, timeout=60)
    assert again.status_code == 507  # a refusal is not cached


def test_two_processes_share_sixteen_cold_requests_one_execution(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, templates: Path, small_store: Path, repo_on_path: None
) -> None:
    marks = tmp_path / "runs.txt"
    with_steps(
        templates, "slow", f"{{element: '{TESTS}:mark', path: '{marks}'}}", f"{{element: '{TESTS}:sleep', seconds: 1}}"
    )
    shared = config(tmp_path, htpasswd_file, small_store)
    servers = [serve(shared), serve(shared)]
    url = "/dispel/slow/312/20181129/2/10-250-20-180"
    barrier, answers = threading.Barrier(16), []

    def get(i: int) -> None:
        barrier.wait()
        answers.append(requests.get(servers[i % 2].url + url, auth=AUTH, timeout=60))

    threads = [threading.Thread(target=get, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in answers] == [200] * 16
    assert len({r.content for r in answers}) == 1
    with SqliteStateStore(tmp_path / "state.db") as store:
        assert executions_total(store) == 1
    assert len(marks.read_text().splitlines()) == 1


def test_a_third_party_element_from_an_entry_point(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, templates: Path, small_store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    site = tmp_path / "site"
    (site / "davgate_live_plugin").mkdir(parents=True)
    (site / "davgate_live_plugin" / "__init__.py").write_text("def tenfold(data, ctx):\n    return data * 10\n")
    info = site / "davgate_live_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: davgate-live-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[davgate.dispel.elements]\ntenfold = davgate_live_plugin:tenfold\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    with_steps(templates, "tenfold", "{element: tenfold}")
    server = serve(config(tmp_path, htpasswd_file, small_store))
    response = requests.get(server.url + "/dispel/tenfold/312/20181129/0/0-20-0-10.npy", auth=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    source = tifffile.imread(small_store / "tiffstore/312/20181129.tif", key=0)
    assert np.array_equal(np.load(io.BytesIO(response.content)), source[0:10, 0:20] * 10)


def test_a_remote_read_over_max_remote_read_gets_507(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, templates: Path, sshd: Sshd
) -> None:
    remote = tmp_path / "remote"
    write_stack(remote / "tiffstore/312/20181129.tif", stack(1, 3, 200, 300), tile=(64, 64))
    write_stack(remote / "tiffstore/500/20200101.tif", stack(5, 1, 2048, 3072), rowsperstrip=2048)  # a 12 MiB strip
    settings = config(tmp_path, htpasswd_file, remote, workers=1, max_remote_read=8 * 1024 * 1024)
    settings["mounts"]["/source"] = {**sftp_section(sshd, remote, known_hosts=sshd.known_hosts), "readonly": True}
    server = serve(settings)
    response = requests.get(server.url + "/dispel/tiffstore/500/20200101/0/0-10-0-10.npy", auth=AUTH, timeout=60)
    assert response.status_code == 507
    assert response.text.startswith("507 Insufficient Storage: the pipeline reads ")
    assert response.text.endswith("at most 8388608 bytes (the dispel mount's max_remote_read)\n")
    assert response.text.count("\n") == 1
    fine = requests.get(server.url + "/dispel/tiffstore/312/20181129/1/0-10-0-10.npy", auth=AUTH, timeout=60)
    assert fine.status_code == 200  # tiles are small reads: the same server goes on
    assert np.array_equal(np.load(io.BytesIO(fine.content)), stack(1, 3, 200, 300)[1, 0:10, 0:10])


def test_preview_options_and_statistics_over_http(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, templates: Path, small_store: Path
) -> None:
    server = serve(config(tmp_path, htpasswd_file, small_store))
    window = server.url + "/dispel/tiffstore/312/20181129/1/0-200-0-100"
    plain = requests.get(window + ".png", auth=AUTH, timeout=30)
    coloured = requests.get(window + ".png?colormap=magma&size=50", auth=AUTH, timeout=30)
    assert plain.status_code == coloured.status_code == 200
    assert decode_png_shape(plain.content) == (100, 200, 1)
    assert decode_png_shape(coloured.content) == (25, 50, 3)
    same = requests.get(window + ".png?colormap=grey", auth=AUTH, timeout=30)  # the default, named
    assert same.headers["ETag"] == plain.headers["ETag"]
    refused = requests.get(window + ".png?colormap=jet", auth=AUTH, timeout=30)
    assert refused.status_code == 400 and "option 'colormap': expected one of grey" in refused.text
    assert requests.get(window + ".npy?size=50", auth=AUTH, timeout=30).status_code == 400

    stats = requests.get(window + ".json", auth=AUTH, timeout=30).json()
    data = tifffile.imread(small_store / "tiffstore/312/20181129.tif", key=1)[0:100, 0:200]
    assert stats["percentiles"]["98"] == np.percentile(data, 98)
    assert stats["histogram"]["counts"] == np.histogram(data, bins=64)[0].tolist()
    assert (stats["min"], stats["max"], stats["mean"]) == (data.min(), data.max(), data.mean(dtype=np.float64))


def decode_png_shape(data: bytes) -> tuple[int, int, int]:
    """Height, width and samples per pixel from a PNG's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, _, colour = struct.unpack(">IIBB", data[16:26])
    return height, width, {0: 1, 2: 3, 6: 4}[colour]


def test_a_layer_as_a_tile_pyramid(
    serve: ServerLauncher, tmp_path: Path, htpasswd_file: Path, templates: Path, small_store: Path
) -> None:
    (templates / "tiles.yaml").write_text((REPO / "conf/dispel/tiles.yaml").read_text())
    server = serve(config(tmp_path, htpasswd_file, small_store))  # layers of 300 x 200: zooms 0 and 1
    base = server.url + "/dispel/tiles/312/20181129/1/"

    def listed(path: str) -> list[str]:
        body = requests.request("PROPFIND", base + path, auth=AUTH, headers={"Depth": "1"}, timeout=30).text
        return re.findall(r"<D:href>/dispel/tiles/312/20181129/1/" + re.escape(path) + r"([^<]+)</D:href>", body)

    assert listed("") == ["0/", "1/"]
    assert listed("1/") == ["0/", "1/"]
    assert listed("1/1/") == ["0.png"]
    tiles = {xy: requests.get(f"{base}1/{xy}.png", auth=AUTH, timeout=30) for xy in ("0/0", "1/0")}
    assert all(tile.status_code == 200 and tile.headers["Content-Type"] == "image/png" for tile in tiles.values())
    assert decode_png_shape(tiles["0/0"].content) == (256, 256, 4)
    # Zoom 1 is full resolution: the tiles put side by side are the layer, stretched by the layer's percentiles.
    layer = tifffile.imread(small_store / "tiffstore/312/20181129.tif", key=1)
    expected = stretch.between(layer, *np.percentile(layer, [2, 98]))
    left, right = (decode_png(tiles[xy].content) for xy in ("0/0", "1/0"))
    assert np.array_equal(np.hstack([left[:200, :, 0], right[:200, : 300 - 256, 0]]), expected)
    assert (left[:200, :, 3] == 255).all() and (right[:, 300 - 256 :, 3] == 0).all()  # the edge is transparent
    outside = requests.get(base + "1/2/0.png", auth=AUTH, timeout=30)
    assert outside.status_code == 404 and "tile 2/0 is not in zoom 1 (2 x 1 tiles)" in outside.text
    overview = requests.get(base + "0/0/0.png?colormap=viridis", auth=AUTH, timeout=30)
    assert overview.status_code == 200 and decode_png_shape(overview.content) == (256, 256, 4)
