"""The baselines without davgate, each timed inside a warm Python process.

    python -m bench.direct s3-get  BUCKET KEY            # boto3 get_object().read(), 1 MiB chunks to /dev/null
    python -m bench.direct s3-put  BUCKET KEY FILE       # boto3 upload_fileobj (default TransferConfig)
    python -m bench.direct sftp-get REMOTE               # paramiko SFTPClient.getfo to /dev/null
    python -m bench.direct sftp-put FILE REMOTE          # paramiko SFTPClient.putfo
    python -m bench.direct tiff-crop FILE L:x0-x1-y0-y1 ...   # tifffile page read + numpy crop, per window

Connections and imports come first and are not timed; only the transfer
(or the read and crop) is. S3 settings come from the environment that
scripts/rgw-up.sh prints, SSH ones from scripts/sshd-up.sh's. Prints one
JSON object: {"seconds": [...], "bytes": N}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

CHUNK = 1024 * 1024


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=16,
    )
    return boto3.session.Session().client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], config=config)


def s3_get(bucket: str, key: str) -> tuple[float, int]:
    client = s3_client()
    client.head_object(Bucket=bucket, Key=key)  # connect first
    moved = 0
    with open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        while chunk := body.read(CHUNK):
            moved += sink.write(chunk)
        return time.perf_counter() - start, moved


def s3_put(bucket: str, key: str, path: str) -> tuple[float, int]:
    client = s3_client()
    client.head_bucket(Bucket=bucket)
    with open(path, "rb") as source:
        start = time.perf_counter()
        client.upload_fileobj(source, bucket, key)
        return time.perf_counter() - start, os.path.getsize(path)


def sftp_client() -> Any:
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(os.environ["SSHD_KNOWN_HOSTS"])
    client.connect(
        os.environ["SSHD_HOST"], port=int(os.environ["SSHD_PORT"]), username=os.environ["SSHD_USER"],
        key_filename=os.environ["SSHD_KEY"], allow_agent=False, look_for_keys=False,
    )  # fmt: skip
    return client.open_sftp()


def sftp_get(remote: str) -> tuple[float, int]:
    sftp = sftp_client()
    with open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        size = sftp.getfo(remote, sink)
        return time.perf_counter() - start, size


def sftp_put(path: str, remote: str) -> tuple[float, int]:
    sftp = sftp_client()
    with open(path, "rb") as source:
        start = time.perf_counter()
        sftp.putfo(source, remote)
        return time.perf_counter() - start, os.path.getsize(path)


def tiff_crop(path: str, *windows: str) -> tuple[list[float], int]:
    """Open the file, read the window's page, crop it: per window, the first time in this process."""
    import numpy as np
    import tifffile

    with tifffile.TiffFile(path) as tiff:  # warm the code paths on a page no window uses
        tiff.pages[len(tiff.pages) - 1].asarray()
    times, moved = [], 0
    for window in windows:
        layer, grid = window.split(":")
        x0, x1, y0, y1 = map(int, grid.split("-"))
        start = time.perf_counter()
        with tifffile.TiffFile(path) as tiff:
            crop = np.ascontiguousarray(tiff.pages[int(layer)].asarray()[y0:y1, x0:x1])
        times.append(time.perf_counter() - start)
        moved += crop.nbytes
    return times, moved


COMMANDS: dict[str, Callable[..., tuple[Any, int]]] = {
    "s3-get": s3_get, "s3-put": s3_put, "sftp-get": sftp_get, "sftp-put": sftp_put, "tiff-crop": tiff_crop,
}  # fmt: skip


def main(argv: list[str]) -> int:
    seconds, moved = COMMANDS[argv[0]](*argv[1:])
    print(json.dumps({"seconds": seconds if isinstance(seconds, list) else [seconds], "bytes": moved}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
