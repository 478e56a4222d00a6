"""The boto3 client of an ``s3`` mount, and the one table that turns S3 failures into davgate errors.

A client is made per mount and shared by all request threads (boto3 clients
are thread-safe). Every call is bounded: connect and read timeouts come from
the mount's ``timeout``, retries from its ``retries``, so a backend that is
down answers :class:`errors.Unavailable` after at most about
``(retries + 1) * timeout`` seconds, never a hang.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
)

from davgate import errors
from davgate.hardening.outbound import Opener
from davgate.providers.s3.connections import send_through

# S3 error codes (from the XML body, or the bare status of a HEAD) -> davgate errors.
CODE_ERRORS: dict[str, type[errors.StorageError]] = {
    "NoSuchKey": errors.NotFound,
    "NotFound": errors.NotFound,
    "NoSuchUpload": errors.NotFound,
    "404": errors.NotFound,
    "AccessDenied": errors.Forbidden,
    "Forbidden": errors.Forbidden,
    "AllAccessDisabled": errors.Forbidden,
    "403": errors.Forbidden,
    "PreconditionFailed": errors.PreconditionFailed,
    "412": errors.PreconditionFailed,
    "EntityTooLarge": errors.NoSpace,
    "QuotaExceeded": errors.NoSpace,
    "UserQuotaExceeded": errors.NoSpace,
    "InsufficientCapacity": errors.NoSpace,
    "SlowDown": errors.Unavailable,
    "ServiceUnavailable": errors.Unavailable,
    "503": errors.Unavailable,
    # The gateway's own configuration is wrong: not the client's fault.
    "NoSuchBucket": errors.BadGateway,
    "InvalidAccessKeyId": errors.BadGateway,
    "SignatureDoesNotMatch": errors.BadGateway,
}


def error_class(error: ClientError) -> type[errors.StorageError]:
    """The davgate error for an S3 error response, by code, then by status."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in CODE_ERRORS:
        return CODE_ERRORS[code]
    return CODE_ERRORS.get(str(status), errors.BadGateway)


def error_code(error: BaseException | None) -> str:
    """The S3 error code of a ClientError ('' for anything else)."""
    if not isinstance(error, ClientError):
        return ""
    return str(error.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def translated(rel: str) -> Iterator[None]:
    """Raise davgate errors for boto3's, with ``rel`` as the path."""
    try:
        yield
    except ClientError as error:
        detail = f"S3 {error_code(error) or 'error'}"
        raise error_class(error)(rel, detail) from error
    except (ConnectionError, HTTPClientError) as error:
        raise errors.Unavailable(rel, f"S3 endpoint unreachable or too slow: {type(error).__name__}") from error
    except BotoCoreError as error:
        raise errors.BadGateway(rel, f"S3 client error: {type(error).__name__}") from error


class Sessions:
    """One boto3 session per process: its clients share the loaded S3 model (~12 MiB each otherwise).

    Sessions are not thread-safe, so clients are made under a lock; the
    clients themselves are.
    """

    lock = threading.Lock()
    session: boto3.session.Session | None = None

    @classmethod
    def client(cls, **arguments: Any) -> Any:
        with cls.lock:
            if cls.session is None:
                cls.session = boto3.session.Session()
            return cls.session.client("s3", **arguments)


def make_client(options: Any) -> Any:
    """A boto3 S3 client for the mount's options, with bounded timeouts and retries."""
    config = Config(
        connect_timeout=options.timeout,
        read_timeout=options.timeout,
        retries={"total_max_attempts": options.retries + 1, "mode": "standard"},
        max_pool_connections=options.max_connections,
        s3={"addressing_style": options.addressing_style},
        signature_version="s3v4",
        # Checksums only where S3 requires them: Ceph before reef knows no
        # flexible checksums, and hashing every byte again costs throughput.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_appid="davgate",
    )
    return Sessions.client(
        endpoint_url=options.endpoint,
        region_name=options.region,
        aws_access_key_id=options.access_key,
        aws_secret_access_key=options.secret_key,
        config=config,
    )


class LazyClient:
    """The boto3 client of a mount or a cache, made on first use (so never shared across a fork), once for all threads.

    With an ``opener`` (an API-made mount: the outbound rule's), every
    connection of the client is opened by it (:mod:`.connections`).
    """

    def __init__(self, options: Any, opener: Opener | None = None) -> None:
        self.options = options
        self.opener = opener
        self._client: Any = None
        self._session: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = make_client(self.options)
                    if self.opener is not None:
                        self._session = send_through(client, self.opener)
                    self._client = client
        return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            session, self._session = self._session, None
        if client is not None:
            client.close()
        if session is not None:
            session.close()
