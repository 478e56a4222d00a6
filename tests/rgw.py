"""A real one-node Ceph RGW for the s3 tests, started once per session.

``scripts/rgw-up.sh`` starts it (installing Ceph first on a fresh machine,
as root) in a temporary folder; ``scripts/rgw-down.sh`` stops exactly the
daemons it started. Tests get an :class:`Rgw`: the endpoint and keys, a
boto3 client, a fresh prefix or bucket per test, and a way to stop and
start the gateway alone (an S3 outage; about 0.2 s each way).
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from davgate.config.schema import S3Mount as S3Options
from davgate.providers.s3 import S3Mount

REPO = Path(__file__).resolve().parent.parent
UP, DOWN = REPO / "scripts" / "rgw-up.sh", REPO / "scripts" / "rgw-down.sh"
START_TIMEOUT = 600  # a fresh machine installs Ceph first (~15 s, more on a slow mirror)
SESSION_BUCKET = "davgate-tests"


@dataclass
class Rgw:
    """A running gateway: where it is, and what a test may do with it."""

    data_dir: Path
    env: dict[str, str]
    buckets: itertools.count = field(default_factory=itertools.count)
    _client: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return self.env["S3_ENDPOINT_URL"]

    @property
    def allowance(self) -> str:
        """The gateway's host:port, for ``server.outbound_allow`` (that port only)."""
        parts = urlsplit(self.endpoint)
        return f"{parts.hostname}:{parts.port}"

    def client(self) -> Any:
        """A plain boto3 client (one per session; clients are thread-safe)."""
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def new_client(self) -> Any:
        config = Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 2, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            config=config,
        )

    def options(self, bucket: str = SESSION_BUCKET, **overrides: Any) -> S3Options:
        """Mount options for this gateway: the session bucket and a fresh prefix unless told."""
        options = S3Options(
            type="s3",
            endpoint=self.endpoint,
            bucket=bucket,
            access_key=self.env["AWS_ACCESS_KEY_ID"],
            secret_key=self.env["AWS_SECRET_ACCESS_KEY"],
            prefix=f"t-{uuid.uuid4().hex[:12]}",
            timeout=5.0,
        )
        return replace(options, **overrides)

    def mount_config(self, **overrides: Any) -> dict[str, Any]:
        """The same options as a davgate YAML mount section."""
        options = self.options(**overrides)
        return {name: value for name, value in vars(options).items() if value is not None}

    def mount(self, **overrides: Any) -> S3Mount:
        mount = S3Mount("/s3", self.options(**overrides))
        mount.start()
        return mount

    def new_bucket_name(self) -> str:
        return f"davgate-t{next(self.buckets)}-{uuid.uuid4().hex[:8]}"

    def stop_gateway(self) -> None:
        """Stop radosgw alone; mon and osd (and the data) stay."""
        run_script(DOWN, "--rgw-only", self.data_dir)

    def start_gateway(self) -> None:
        """Start radosgw again: same port, keys, buckets and objects."""
        run_script(UP, self.data_dir)


@contextlib.contextmanager
def counted_calls(mount: S3Mount) -> Iterator[Counter[str]]:
    """Count the S3 operations (by name, e.g. "CopyObject") a mount's client makes in the block.

    Read the counter after the block: calls from part-upload threads are
    gathered in a list (appends are atomic) and counted at its end.
    """
    names: list[str] = []

    def count(model: Any, **_: Any) -> None:
        names.append(model.name)

    calls: Counter[str] = Counter()
    events = mount.client.meta.events
    events.register("before-call.s3", count)
    try:
        yield calls
    finally:
        events.unregister("before-call.s3", count)
        calls.update(names)


def run_script(script: Path, *args: Any) -> str:
    done = subprocess.run(
        ["bash", str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def parse_env(text: str) -> dict[str, str]:
    lines = (line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export "))
    return {name: value for name, value in lines}


def start(data_dir: Path) -> Rgw:
    return Rgw(data_dir, parse_env(run_script(UP, data_dir)))


def stop(rgw: Rgw) -> None:
    run_script(DOWN, "--purge", rgw.data_dir)


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rgw]:
    """The session's gateway, with the bucket ``davgate-tests`` made."""
    data_dir = tmp_path_factory.mktemp("ceph")
    gateway = start(data_dir)
    try:
        gateway.client().create_bucket(Bucket=SESSION_BUCKET)
        yield gateway
    finally:
        stop(gateway)
