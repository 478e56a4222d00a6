"""NextCloud's external storage of type WebDAV, through its client library sabre/dav (PHP).

``nextcloud.php`` makes the requests NextCloud's ``OC\\Files\\Storage\\DAV``
makes: the PROPFIND properties it asks for (with ``oc:permissions`` on every
resource), PUT, GET, MOVE, DELETE, PROPPATCH of ``{DAV:}lastmodified`` with
Unix seconds (read back as NextCloud does), and folder ETags that must change
whenever the folder's contents change.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from tests.clients.gateway import PASSWORD, USER, Gateway

SCRIPT = Path(__file__).with_name("nextcloud.php")
SABRE = Path("/usr/share/php/Sabre/autoload.php")
ASK = b"""<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
<d:prop><oc:permissions/><d:getetag/><d:quota-available-bytes/></d:prop></d:propfind>"""


def run_storage(gateway: Gateway, php: str, folder: str) -> dict:
    done = subprocess.run(
        [php, "-d", "error_reporting=E_ALL & ~E_DEPRECATED", str(SCRIPT), gateway.url + folder, USER, PASSWORD],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stderr}\n{done.stdout}\n--- davgate log ---\n{gateway.log_tail()}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def php(tool: Callable[[str], str]) -> str:
    if not SABRE.exists():
        pytest.fail("php-sabre-dav is not installed: run bash scripts/setup.sh --test")
    return tool("php")


@pytest.mark.parametrize("mount", ["/data", "/s3", "/sftp"])
def test_nextcloud_external_storage(gateway: Gateway, php: str, mount: str) -> None:
    folder = gateway.folder(mount, "nextcloud")
    seen = run_storage(gateway, php, folder)
    expected = {
        "Photos \u00fc/": "RGDNVCK",
        "Photos \u00fc/a b.bin": "RGDNVW",
        "Photos \u00fc/sub/": "RGDNVCK",
        "Photos \u00fc/sub/<b>&amp;.txt": "RGDNVW",
    }
    assert seen["permissions"] == {folder + name: letters for name, letters in expected.items()}
    assert seen["quota"] is None if mount == "/s3" else int(seen["quota"]) > 0
    assert not gateway.exists(folder + "Photos%20%C3%BC/")
    gateway.http("DELETE", folder)


def test_the_time_nextcloud_sets_on_s3_is_kept_until_the_content_changes(gateway: Gateway, php: str) -> None:
    """S3 cannot set a modification time; davgate keeps the client's for the content it was set on."""
    folder = gateway.folder("/s3", "mtime")
    assert gateway.http("PUT", folder + "f.txt", data=b"one").status_code == 201
    body = b'<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:lastmodified>1500000000</d:lastmodified></d:prop></d:set></d:propertyupdate>'
    assert b"200 OK" in gateway.http("PROPPATCH", folder + "f.txt", data=body).content
    assert gateway.http("HEAD", folder + "f.txt").headers["Last-Modified"] == "Fri, 14 Jul 2017 02:40:00 GMT"
    assert (
        gateway.http("COPY", folder + "f.txt", headers={"Destination": gateway.url + folder + "g.txt"}).status_code
        == 201
    )
    assert gateway.http("HEAD", folder + "g.txt").headers["Last-Modified"] == "Fri, 14 Jul 2017 02:40:00 GMT"
    assert gateway.http("PUT", folder + "f.txt", data=b"two").status_code == 204
    assert gateway.http("HEAD", folder + "f.txt").headers["Last-Modified"] != "Fri, 14 Jul 2017 02:40:00 GMT"
    gateway.http("DELETE", folder)


def permissions(gateway: Gateway, path: str) -> dict[str, str | None]:
    answer = gateway.http("PROPFIND", path, data=ASK, headers={"Depth": "1"})
    assert answer.status_code == 207
    tree = etree.fromstring(answer.content)
    return {
        response.findtext("{DAV:}href"): response.findtext(".//{http://owncloud.org/ns}permissions")
        for response in tree.iter("{DAV:}response")
    }


def test_permissions_of_read_only_places(gateway: Gateway) -> None:
    assert permissions(gateway, "/ro/") == {"/ro/": "RG", "/ro/readme.txt": "RG"}
    assert set(permissions(gateway, "/").values()) >= {"RG", "RGCK"}
    assert permissions(gateway, "/")["/"] == "RG"
