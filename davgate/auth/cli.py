"""``davgate htpasswd FILE USER [--password-stdin]``: add or change a user.

Writes a bcrypt hash into an htpasswd file, creating it (mode 0600) if
needed. The password comes from the first line of standard input with
``--password-stdin`` (for scripts), else from two prompts on the terminal; it
is never taken from the command line, where other users could see it.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from davgate.auth.hashes import hash_password
from davgate.auth.htpasswd import set_password, validate_user_name

__all__ = ["htpasswd_command"]


class _Refused(Exception):
    """The command cannot go on; the message says why."""


def htpasswd_command(file: Path, user: str, password_stdin: bool) -> int:
    """Add or update ``user`` in ``file``; return the exit status (0 or 1)."""
    try:
        validate_user_name(user)
        password = _from_stdin() if password_stdin else _from_prompt()
        replaced = set_password(file, user, hash_password(password))
    except (_Refused, ValueError) as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"cannot write {file}: {e.strerror or type(e).__name__}")
    print(f"user {user} {'updated' if replaced else 'added'} in {file}", file=sys.stderr)
    return 0


def _from_stdin() -> str:
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:  # its message would show a byte of the password
        raise _Refused("standard input is not valid text") from None
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise _Refused("no password on the first line of standard input")
    return password


def _from_prompt() -> str:
    try:
        password = getpass.getpass("New password: ")
        again = getpass.getpass("Re-type new password: ")
    except EOFError:
        raise _Refused("no password given") from None
    if password != again:
        raise _Refused("passwords do not match")
    if not password:
        raise _Refused("empty password")
    return password


def _fail(message: str) -> int:
    print(f"davgate htpasswd: error: {message}", file=sys.stderr)
    return 1
