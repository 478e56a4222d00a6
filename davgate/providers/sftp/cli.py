"""``davgate sftp-enroll``: install a generated SSH key on a host, with a password used once."""

from __future__ import annotations

import argparse
import getpass
import sys

from davgate import errors


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    enroll = commands.add_parser(
        "sftp-enroll",
        help="install a generated SSH key for an sftp mount, logging in once with a password",
        description="Log in to HOST once with USER's password (read from the terminal, or the first "
        "line of stdin with --password-stdin; never stored or shown), append the public key of "
        "--key-out (an ed25519 key made there if missing) to ~/.ssh/authorized_keys, and check "
        "that the key logs in. The host key is checked against --known-hosts, or trusted on "
        "first use and pinned in the state store of --config.",
    )
    enroll.add_argument("--host", required=True)
    enroll.add_argument("--port", type=int, default=22)
    enroll.add_argument("--user", required=True)
    enroll.add_argument(
        "--key-out", required=True, metavar="PATH", help="private key to make or reuse (PATH.pub beside it)"
    )
    enroll.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    enroll.add_argument("--known-hosts", metavar="FILE", help="accept only a host key listed in FILE")
    enroll.add_argument("--config", metavar="FILE", help="pin the host key in this configuration's state store")
    enroll.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    return enroll


def read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(prompt)
    else:
        raise SystemExit("davgate sftp-enroll: no terminal to ask for the password; use --password-stdin")
    if not password:
        raise SystemExit("davgate sftp-enroll: empty password")
    return password


def enroll_command(args: argparse.Namespace) -> int:
    from davgate.providers.sftp.enroll import enroll

    store = None
    if args.config:
        from davgate.app import open_state
        from davgate.config import load_config

        store = open_state(load_config(args.config))
    try:
        password = read_password(args.password_stdin, f"Password for {args.user}@{args.host}: ")
        result = enroll(
            args.host, args.port, args.user, password, args.key_out,
            known_hosts=args.known_hosts, store=store, timeout=args.timeout,
        )  # fmt: skip
    except errors.StorageError as error:
        print(f"davgate sftp-enroll: {args.user}@{args.host}:{args.port}: {error.detail}", file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
    print(f"key {result.key_path} ({result.key_fingerprint}, {'new' if result.created_key else 'existing'})")
    print(
        f"{'authorised' if result.added else 'already authorised'} for {args.user}@{args.host}:{args.port}"
        f" (host key {result.host_fingerprint})"
    )
    print(f"mount: {{type: sftp, host: {args.host}, port: {args.port}, user: {args.user}, key: {result.key_path}}}")
    return 0
