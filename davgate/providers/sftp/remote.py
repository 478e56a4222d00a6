"""fs.sshfs and paramiko, imported once, and their errors translated in one place.

PyFilesystem2's ``fs`` package declares itself a namespace with
``pkg_resources``, which warns on import (and needs setuptools<82, pinned in
setup.cfg); the warning is silenced here, for that import only.

:func:`translated` is the one boundary where fs.errors, paramiko's
exceptions, SFTP status errors (``IOError`` with an errno, or without one for
SSH_FX_FAILURE) and socket errors become :mod:`davgate.errors`. A backend
that cannot be reached, or does not answer within the mount's timeout,
becomes :class:`~davgate.errors.Unavailable` (503).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import warnings
from collections.abc import Iterator

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*pkg_resources", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import fs.errors as fs_errors
    import paramiko
    from fs.sshfs import SSHFS

from davgate import errors

# paramiko says "Connected" and "Opened sftp connection" at INFO for every
# connection and channel (one per transfer): only when asked for.
if logging.getLogger("paramiko").level == logging.NOTSET:
    logging.getLogger("paramiko").setLevel(logging.WARNING)

__all__ = ["SSHFS", "HostKeyRejected", "channel_lost", "is_connection_error", "paramiko", "translate", "translated"]


class HostKeyRejected(errors.BadGateway):
    """The server's SSH host key is not the one we know (known_hosts file or pin)."""

    reason = "SSH host key refused"


class LoginRefused(errors.BadGateway):
    """The server refused our SSH key (or password)."""

    reason = "SSH login refused"


FS_ERRORS: dict[type[Exception], type[errors.StorageError]] = {
    fs_errors.ResourceNotFound: errors.NotFound,
    fs_errors.PermissionDenied: errors.Forbidden,
    fs_errors.DestinationExists: errors.Exists,
    fs_errors.DirectoryExists: errors.Exists,
    fs_errors.FileExists: errors.Exists,
    fs_errors.DirectoryNotEmpty: errors.NotEmpty,
    fs_errors.FileExpected: errors.Conflict,
    fs_errors.DirectoryExpected: errors.Conflict,
    fs_errors.InsufficientStorage: errors.NoSpace,
    fs_errors.RemoteConnectionError: errors.Unavailable,
    fs_errors.OperationTimeout: errors.Unavailable,
}

# What an SFTP status carries to us: paramiko keeps only these two as errno.
SFTP_ERRNO: dict[int, type[errors.StorageError]] = {
    errno.ENOENT: errors.NotFound,
    errno.EACCES: errors.Forbidden,
    errno.EPERM: errors.Forbidden,
}

CONNECTION_ERRORS = (
    TimeoutError,  # socket.timeout included
    ConnectionError,
    EOFError,
    socket.gaierror,
    paramiko.ssh_exception.NoValidConnectionsError,
    paramiko.SSHException,
    fs_errors.RemoteConnectionError,
    fs_errors.CreateFailed,
)


def is_connection_error(error: BaseException) -> bool:
    """True if ``error`` says the connection is unusable (not that one request failed)."""
    if isinstance(error, paramiko.ChannelException):
        return False  # the server refused one more channel; the connection is fine
    if isinstance(error, OSError) and type(error) is OSError:
        return error.errno not in (None, *SFTP_ERRNO)  # e.g. EHOSTUNREACH; status errors have none
    return isinstance(error, CONNECTION_ERRORS)


def translate(error: BaseException, rel: str) -> errors.StorageError | None:
    """The davgate error for ``error``, or None if it is not a storage error at all."""
    if isinstance(error, errors.StorageError):
        return error
    if isinstance(error, paramiko.BadHostKeyException):
        return HostKeyRejected(rel, "the SSH host key does not match the one known for this host")
    if isinstance(error, paramiko.AuthenticationException):
        return LoginRefused(rel)
    if isinstance(error, paramiko.ChannelException):
        return errors.Unavailable(rel, "the SSH server refused another channel")
    if isinstance(error, fs_errors.CreateFailed):
        cause = error.__cause__ or error.__context__
        mapped = translate(cause, rel) if cause is not None else None
        return mapped or errors.Unavailable(rel, "cannot connect")
    for kind in type(error).__mro__:
        if kind in FS_ERRORS:
            return FS_ERRORS[kind](rel)
    if isinstance(error, TimeoutError):
        return errors.Unavailable(rel, "SFTP server did not answer in time")
    if is_connection_error(error):
        return errors.Unavailable(rel, "SFTP server unreachable")
    if isinstance(error, OSError):
        cls = SFTP_ERRNO.get(error.errno or 0)
        return cls(rel) if cls else errors.BadGateway(rel, "the SFTP server refused the request")
    if isinstance(error, (paramiko.SFTPError, fs_errors.FSError)):
        return errors.BadGateway(rel)
    return None


def channel_lost(sftp: paramiko.SFTPClient) -> bool:
    """True once ``sftp``'s channel or its SSH connection is closed.

    paramiko then raises a bare ``OSError`` without an errno, the same shape
    as an SFTP failure status: only the channel's state tells them apart.
    """
    channel = sftp.get_channel()
    transport = channel.get_transport() if channel is not None else None
    return channel is None or channel.closed or transport is None or not transport.is_active()


@contextlib.contextmanager
def translated(rel: str, sftp: paramiko.SFTPClient | None = None) -> Iterator[None]:
    """Raise davgate errors for everything fs.sshfs, paramiko and sockets raise.

    With ``sftp`` (a stream's own channel), any failure once that channel is
    lost is :class:`~davgate.errors.Unavailable`: the server went away.
    """
    try:
        yield
    except errors.StorageError:
        raise
    except Exception as error:
        if sftp is not None and channel_lost(sftp):
            raise errors.Unavailable(rel, "SFTP server unreachable") from error
        mapped = translate(error, rel)
        if mapped is None:
            raise
        raise mapped from error
