"""A template added from YAML alone: the example of docs/DISPEL.md, served without any server code."""

from __future__ import annotations

import io
import re

import numpy as np
import tifffile

from davgate.dispel.elements import downsample
from tests.dispel.conftest import REPO, SEED, Dispel
from tests.dispel.test_elements import decode_png

MARKER = "# conf/dispel/thumbnail.yaml"


def guide_template() -> str:
    """The YAML block of "Writing a new template" in docs/DISPEL.md."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "DISPEL.md").read_text(), re.DOTALL)
    found = [block for block in blocks if block.startswith(MARKER)]
    assert len(found) == 1, "docs/DISPEL.md shows the thumbnail template once"
    return found[0]


def test_the_guides_template_works_as_the_guide_says(dispel: Dispel) -> None:
    (dispel.templates / "thumbnail.yaml").write_text(guide_template())
    root = dispel.client.propfind("/dispel/", depth="1").text
    assert "/dispel/thumbnail/" in root  # picked up without a restart
    layer = tifffile.imread(dispel.store.root / SEED, key=2)

    array = dispel.get("/dispel/thumbnail/312/20181129/2/4.npy")
    assert array.status == 200 and array.headers["content-type"] == "application/x-npy"
    expected = downsample(layer, None, factor=4, method="mean")
    assert np.array_equal(np.load(io.BytesIO(array.body)), expected)

    preview = dispel.get("/dispel/thumbnail/312/20181129/2/4")  # the first output is the default
    assert preview.status == 200 and preview.headers["content-type"] == "image/png"
    assert decode_png(preview.body).shape == expected.shape

    refused = dispel.get("/dispel/thumbnail/312/20181129/12/0")
    assert refused.status == 400
    assert refused.text == "400 Bad Request: parameter 'factor': expected an integer from 1 to 16, got '0'\n"
    assert dispel.get("/dispel/thumbnail/312/20181129/9/2").status == 400  # the store's file has 5 layers

    layers = dispel.client.propfind("/dispel/thumbnail/312/20181129/", depth="1").text
    assert re.findall(r"/dispel/thumbnail/312/20181129/(\d+)/<", layers) == ["0", "1", "2", "3", "4"]
    factors = dispel.client.propfind("/dispel/thumbnail/312/20181129/2/", depth="1").text
    assert re.findall(r"/dispel/thumbnail/312/20181129/2/(\d+)\.png<", factors) == [str(f) for f in range(1, 17)]
    assert dispel.executions() == 2
