"""Enrolment: a password used once installs a generated key; the key is used from then on.

As the original system did for its sshfs adaptors: given a host, a user and
that user's password, davgate makes an ed25519 key pair (or reuses the one
at ``key_path``), logs in once with the password (the host key checked
first, as for a mount), appends the public key to ``~/.ssh/authorized_keys``
over SFTP (creating the folder and file with modes 700 and 600), then logs
in with the key to prove it works. The password is passed to paramiko and
dropped; it is never stored, logged or shown. ``davgate sftp-enroll`` and
the management API both call :func:`enroll`.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from davgate import errors
from davgate.hardening.outbound import DIRECT, Opener
from davgate.providers.sftp.hostkeys import HostKeyCheck, fingerprint
from davgate.providers.sftp.pool import connect_sshfs, transport_of
from davgate.providers.sftp.remote import paramiko, translated
from davgate.providers.sftp.remote_ops import lstat_or_none
from davgate.state import StateStore

log = logging.getLogger("davgate.sftp")


class EnrolmentFailed(errors.BadGateway):
    reason = "enrolment failed"


@dataclass(frozen=True)
class Enrolment:
    """What :func:`enroll` did."""

    key_path: Path
    public_key: str  # the authorized_keys line
    key_fingerprint: str
    host_fingerprint: str
    added: bool  # False: the key was authorised already
    created_key: bool  # False: an existing key at key_path was used


def enroll(
    host: str,
    port: int,
    user: str,
    password: str,
    key_path: str | os.PathLike[str],
    *,
    known_hosts: str | os.PathLike[str] | None = None,
    store: StateStore | None = None,
    timeout: float = 10.0,
    opener: Opener = DIRECT,
) -> Enrolment:
    """Authorise the key at ``key_path`` (made if missing) for ``user``@``host``:``port``.

    ``opener`` opens both connections (the outbound rule's, for a host an API user chose).
    """
    key_path = Path(key_path)
    key = load_key(key_path) if key_path.exists() else None  # an unusable one fails before we log in
    where = f"{user}@{host}:{port}"
    check = HostKeyCheck(host, port, Path(known_hosts) if known_hosts else None, store, f"sftp-enroll {where}")
    with translated(where):
        sshfs = connect_sshfs(host, port, user, check, timeout, password=password, opener=opener)
        del password
        try:
            server_key = transport_of(sshfs).get_remote_server_key()
            created = key is None
            key = key or create_key(key_path, f"davgate@{user}@{host}")
            added = authorize(sshfs._sftp, key)
        finally:
            sshfs.close()
        try:
            connect_sshfs(host, port, user, check, timeout, pkey=key, opener=opener).close()
        except paramiko.AuthenticationException as error:
            problem = "the key was added to ~/.ssh/authorized_keys, but the server does not accept it"
            raise EnrolmentFailed(where, f"{problem} (does its AuthorizedKeysFile name another file?)") from error
    host_print = fingerprint(server_key.get_name(), server_key.get_base64())
    key_print = fingerprint(key.get_name(), key.get_base64())
    log.info(
        "sftp-enroll: key %s %s for %s (host key %s)",
        key_print,
        "added" if added else "already there",
        where,
        host_print,
    )
    line = f"{key.get_name()} {key.get_base64()} davgate"
    return Enrolment(key_path, line, key_print, host_print, added, created)


def load_key(path: Path) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(str(path))
    except (OSError, ValueError, paramiko.SSHException) as error:
        raise EnrolmentFailed(str(path), f"cannot use the existing key {path}: {error}") from error


def create_key(path: Path, comment: str) -> paramiko.PKey:
    """A new ed25519 key at ``path`` (mode 600), its public half at ``path.pub``."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    Path(f"{path}.pub").write_bytes(public + f" {comment}\n".encode())
    return paramiko.PKey.from_path(str(path))


def authorize(sftp: paramiko.SFTPClient, key: paramiko.PKey) -> bool:
    """Append ``key`` to ~/.ssh/authorized_keys unless it is there; True if appended."""
    home = sftp.normalize(".")
    folder = posixpath.join(home, ".ssh")
    if lstat_or_none(sftp, folder) is None:
        sftp.mkdir(folder, 0o700)
    path = posixpath.join(folder, "authorized_keys")
    existing = b""
    found = lstat_or_none(sftp, path)
    if found is not None:
        if not stat.S_ISREG(found.st_mode or 0):
            raise EnrolmentFailed(path, "~/.ssh/authorized_keys is not a file")
        with sftp.open(path, "rb") as file:
            existing = file.read()
    if any(key.get_base64().encode() in line.split() for line in existing.splitlines()):
        return False
    separator = b"\n" if existing and not existing.endswith(b"\n") else b""
    with sftp.open(path, "ab") as file:
        file.write(separator + f"{key.get_name()} {key.get_base64()} davgate\n".encode())
    sftp.chmod(path, 0o600)
    return True
