"""Multipart uploads left behind by a davgate that died during a PUT, aborted when a mount starts.

A killed process cannot abort its upload, and the parts it sent stay in the
bucket, invisible and billed, until someone aborts it. At start a mount
aborts the multipart uploads below its prefix that began more than
``older_than`` seconds ago (a day by default): old enough that no live
davgate — this host's or another one's on the same bucket — is still
sending parts to them. A bucket lifecycle rule (``AbortIncompleteMultipartUpload``)
does the same on the storage side where one can be set.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from davgate.providers.s3.client import translated

log = logging.getLogger("davgate.providers.s3")
STALE_AFTER = 24 * 3600.0  # seconds since an upload began before it counts as abandoned


def abort_stale_uploads(client: Any, bucket: str, prefix: str, *, older_than: float = STALE_AFTER) -> int:
    """Abort the multipart uploads below ``prefix`` begun more than ``older_than`` seconds ago; how many."""
    cutoff = time.time() - older_than
    aborted = 0
    with translated(prefix):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() < cutoff:
                    client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    aborted += 1
    if aborted:
        log.info("%s/%s: aborted %d abandoned multipart upload(s)", bucket, prefix, aborted)
    return aborted
