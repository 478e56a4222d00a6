"""What an s3 mount checks before it serves: its options, and its bucket."""

from __future__ import annotations

import logging
from typing import Any

from davgate import errors
from davgate.config.validate import ConfigError
from davgate.providers.s3.client import error_code, translated
from davgate.providers.s3.upload import MAX_PART_SIZE, MIN_PART_SIZE

log = logging.getLogger("davgate.providers.s3")


def clean_prefix(prefix: str) -> str:
    """The mount's key prefix: '' or 'a/b/'."""
    segments = [s for s in prefix.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise ValueError("a prefix has no '.' or '..' segments")
    return "".join(f"{s}/" for s in segments)


def check_options(path: str, options: Any) -> None:
    """An s3 mount's values S3 or boto3 would refuse later, refused at start with the wrong key."""
    key = f"mounts.{path}"
    if not 1 <= options.page_size <= 1000:
        raise ConfigError(f"{key}.page_size", f"expected between 1 and 1000, got {options.page_size!r}")
    check_client_options(key, options)


def check_client_options(key: str, options: Any) -> None:
    """The options every S3 client of davgate shares (mounts and the DISPEL cache)."""
    checks = [
        ("part_size", MIN_PART_SIZE <= options.part_size <= MAX_PART_SIZE, "between 5 MiB and 5 GiB"),
        ("upload_concurrency", options.upload_concurrency >= 1, "at least 1"),
        ("max_connections", options.max_connections >= 1, "at least 1"),
        ("retries", options.retries >= 0, "at least 0"),
        ("timeout", options.timeout > 0, "more than 0 seconds"),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{key}.{name}", f"expected {expected}, got {getattr(options, name)!r}")
    try:
        clean_prefix(options.prefix)
    except ValueError as error:
        raise ConfigError(f"{key}.prefix", str(error)) from None


def check_bucket(client: Any, path: str, options: Any, *, key: str | None = None) -> None:
    """The bucket exists (or is created, with ``create_bucket``) and the keys may use it.

    A missing bucket or refused keys are configuration errors that stop the
    server, naming the key at fault (under ``key``, default ``mounts.<path>``).
    An endpoint that does not answer only warns: the mount answers 503 until
    it is back, and other mounts serve on.
    """
    key = key or f"mounts.{path}"
    try:
        with translated(""):
            client.head_bucket(Bucket=options.bucket)
    except errors.Unavailable as error:
        log.warning("%s: S3 endpoint %s is not answering (%s)", path, options.endpoint, error)
    except (errors.NotFound, errors.BadGateway) as error:
        if not bucket_missing(error):
            raise ConfigError(f"{key}.endpoint", f"S3 at {options.endpoint} failed: {error.detail}") from None
        if not options.create_bucket:
            where = f"bucket {options.bucket!r} does not exist at {options.endpoint}"
            raise ConfigError(f"{key}.bucket", f"{where} (create_bucket: true creates it)") from None
        create_bucket(client, path, options)
    except errors.Forbidden as error:
        raise ConfigError(f"{key}.access_key", f"S3 refused access to {options.bucket!r}: {error.detail}") from None


def bucket_missing(error: errors.StorageError) -> bool:
    return isinstance(error, errors.NotFound) or error_code(error.__cause__) == "NoSuchBucket"


def create_bucket(client: Any, path: str, options: Any) -> None:
    request: dict[str, Any] = {"Bucket": options.bucket}
    if options.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": options.region}
    try:
        with translated(""):
            client.create_bucket(**request)
    except errors.StorageError as error:
        if error_code(error.__cause__) != "BucketAlreadyOwnedByYou":
            raise
    log.info("%s: created bucket %s", path, options.bucket)
