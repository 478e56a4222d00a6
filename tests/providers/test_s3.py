"""The s3 provider against a real Ceph RGW: the shared contract, then what is S3's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from davgate.providers import Mount
from davgate.providers.s3 import S3Mount
from tests.providers.contract import MountContract
from tests.rgw import Rgw


class TestS3Mount(MountContract):
    """Each test gets a fresh prefix of the session bucket as its mount's root."""

    @pytest.fixture(autouse=True)
    def gateway(self, rgw: Rgw) -> None:
        self.rgw = rgw

    def make_mount(self, tmp_path: Path) -> Mount:
        return S3Mount("/s3", self.rgw.options())

    def teardown_mount(self, mount: Mount) -> None:
        assert isinstance(mount, S3Mount)
        mount.delete_below(mount.root, "")
        mount.close()
