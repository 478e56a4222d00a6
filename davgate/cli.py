"""The ``davgate`` command line: serve, check-config, htpasswd, keygen, token, demo-data, copy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from davgate import __version__
from davgate.config import ConfigError, load_config
from davgate.ops import progress


def cmd_serve(args: argparse.Namespace) -> int:
    from davgate.server import serve

    config = load_config(args.config)
    if args.log_format is None and config.server.log_format != "text":
        configure_logging(args.log_level, config.server.log_format)
    return serve(config, host=args.host, port=args.port, config_path=args.config)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    mounts = ", ".join(f"{path} ({m.type})" for path, m in config.mounts.items()) or "none"
    print(f"{args.config}: OK; mounts: {mounts}")
    return 0


def cmd_htpasswd(args: argparse.Namespace) -> int:
    from davgate.auth.cli import htpasswd_command

    return htpasswd_command(args.file, args.user, args.password_stdin)


def cmd_keygen(args: argparse.Namespace) -> int:
    from davgate.auth.tokens import keygen_command

    return keygen_command(args.out, args.type, args.email, args.name, args.force)


def cmd_token(args: argparse.Namespace) -> int:
    from davgate.auth.tokens import token_command

    return token_command(args.key, args.email, args.ttl, args.aud, issuer=args.iss, scopes=args.scope, kid=args.kid)


def cmd_sftp_enroll(args: argparse.Namespace) -> int:
    from davgate.providers.sftp.cli import enroll_command

    return enroll_command(args)


def cmd_copy(args: argparse.Namespace) -> int:
    from davgate.ops.copying import copy_command

    return copy_command(args.config, args.source, args.target)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from davgate.dispel.demo import command

    return command(args.folder, args.force)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="davgate", description="WebDAV virtual file system gateway")
    main.add_argument("--version", action="version", version=f"davgate {__version__}")
    main.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    main.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or one JSON object each (default: server.log_format, text)",
    )
    main.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bars on stderr (auto: on a terminal)",
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the WebDAV server")
    serve.add_argument("--config", required=True, type=Path, metavar="FILE")
    serve.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind; 0 picks a free one")
    serve.add_argument("--log-level", default=argparse.SUPPRESS, help="as davgate --log-level, after the command")
    serve.add_argument(
        "--log-format", choices=("text", "json"), default=argparse.SUPPRESS, help="as davgate --log-format"
    )
    serve.set_defaults(run=cmd_serve)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("config", type=Path, metavar="FILE")
    check.set_defaults(run=cmd_check_config)

    htpasswd = commands.add_parser("htpasswd", help="add or change a user's password (bcrypt)")
    htpasswd.add_argument("file", type=Path, metavar="FILE")
    htpasswd.add_argument("user", metavar="USER")
    htpasswd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    htpasswd.set_defaults(run=cmd_htpasswd)

    keygen = commands.add_parser("keygen", help="write a key pair; print its users-file entry")
    keygen.add_argument(
        "--out", required=True, type=Path, metavar="PREFIX", help="private key PREFIX, public PREFIX.pub"
    )
    keygen.add_argument("--type", choices=("ed25519", "rsa", "ec"), default="ed25519")
    keygen.add_argument("--email", help="the user's e-mail, the key of the users-file entry")
    keygen.add_argument("--name", help="the user's name in the entry (default: the e-mail)")
    keygen.add_argument("--force", action="store_true", help="replace existing key files")
    keygen.set_defaults(run=cmd_keygen)

    token = commands.add_parser("token", help="print a JWT signed with a private key")
    token.add_argument("--key", required=True, type=Path, metavar="PRIVATE_PEM")
    token.add_argument("--email", required=True, metavar="E")
    token.add_argument("--aud", metavar="A", help="audience (aud claim)")
    token.add_argument("--ttl", type=int, default=3600, metavar="SECONDS", help="lifetime (default 3600)")
    token.add_argument("--iss", metavar="I", help="issuer (iss claim)")
    token.add_argument("--scope", action="append", metavar="S", help="e.g. storage.read:/data (repeatable)")
    token.add_argument("--kid", help="key id for the header, for keys published in a JWKS")
    token.set_defaults(run=cmd_token)

    demo = commands.add_parser("demo-data", help="write a sample TIFF store (DIR/tiffstore/<subject>/<date>.tif)")
    demo.add_argument("folder", type=Path, metavar="DIR")
    demo.add_argument("--force", action="store_true", help="write files that already exist again")
    demo.set_defaults(run=cmd_demo_data)

    copy = commands.add_parser("copy", help="copy one file between mounts, checked by SHA-256 (progress bar)")
    copy.add_argument("--config", required=True, type=Path, metavar="FILE")
    copy.add_argument("source", metavar="SOURCE", help="a path of the namespace, e.g. /hpc/run1/out.tif")
    copy.add_argument("target", metavar="TARGET", help="a path of the namespace; ending in '/': into that folder")
    copy.set_defaults(run=cmd_copy)

    from davgate.providers.sftp.cli import add_parser as add_sftp_enroll

    add_sftp_enroll(commands).set_defaults(run=cmd_sftp_enroll)
    return main


def configure_logging(level: str, log_format: str | None = None) -> None:
    """davgate's own loggers at ``level``, as text or JSON lines; WsgiDAV's internals only when they warn."""
    from davgate.ops import logs

    logs.configure(level, "json" if log_format == "json" else "text")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    progress.mode = args.progress
    try:
        return args.run(args)
    except ConfigError as error:
        print(f"davgate: configuration error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"davgate: {error}", file=sys.stderr)
        return 1
