"""Taking an enrolled key off its host again, when its infrastructure is removed.

Enrolment (:func:`davgate.providers.sftp.enroll.enroll`) appended the key's
line to ``~/.ssh/authorized_keys``; this logs in with that same key (the
host key checked as for a mount) and rewrites the file without that line,
through a temporary file and a rename.
"""

from __future__ import annotations

import posixpath
import uuid
from pathlib import Path

from davgate.hardening.outbound import DIRECT, Opener
from davgate.providers.sftp.hostkeys import HostKeyCheck
from davgate.providers.sftp.pool import connect_sshfs
from davgate.providers.sftp.remote import paramiko, translated
from davgate.providers.sftp.remote_ops import lstat_or_none
from davgate.state import StateStore

__all__ = ["revoke"]

TIMEOUT = 10.0


def revoke(host: str, port: int, user: str, key_path: Path, store: StateStore | None, opener: Opener = DIRECT) -> bool:
    """Remove ``key_path``'s public key from ``user``@``host``'s authorized_keys; True if a line went."""
    key = paramiko.PKey.from_path(str(key_path))
    where = f"{user}@{host}:{port}"
    check = HostKeyCheck(host, port, None, store, f"revoke {where}")
    with translated(where):
        sshfs = connect_sshfs(host, port, user, check, TIMEOUT, pkey=key, opener=opener)
        try:
            return remove_line(sshfs._sftp, key.get_base64().encode())
        finally:
            sshfs.close()


def remove_line(sftp: paramiko.SFTPClient, blob: bytes) -> bool:
    path = posixpath.join(sftp.normalize("."), ".ssh", "authorized_keys")
    if lstat_or_none(sftp, path) is None:
        return False
    with sftp.open(path, "rb") as file:
        lines = file.read().splitlines(keepends=True)
    kept = [line for line in lines if blob not in line.split()]
    if len(kept) == len(lines):
        return False
    temp = f"{path}.davgate-{uuid.uuid4().hex[:8]}"
    with sftp.open(temp, "wb") as file:
        file.write(b"".join(kept))
    sftp.chmod(temp, 0o600)
    sftp.posix_rename(temp, path)
    return True
