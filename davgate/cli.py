"""The ``davgate`` command line: serve, check-config, htpasswd."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from davgate import __version__
from davgate.config import ConfigError, load_config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def cmd_serve(args: argparse.Namespace) -> int:
    from davgate.server import serve

    config = load_config(args.config)
    return serve(config, host=args.host, port=args.port)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    mounts = ", ".join(f"{path} ({m.type})" for path, m in config.mounts.items()) or "none"
    print(f"{args.config}: OK; mounts: {mounts}")
    return 0


def cmd_htpasswd(args: argparse.Namespace) -> int:
    from davgate.auth.cli import htpasswd_command

    return htpasswd_command(args.file, args.user, args.password_stdin)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="davgate", description="WebDAV virtual file system gateway")
    main.add_argument("--version", action="version", version=f"davgate {__version__}")
    main.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the WebDAV server")
    serve.add_argument("--config", required=True, type=Path, metavar="FILE")
    serve.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind; 0 picks a free one")
    serve.set_defaults(run=cmd_serve)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("config", type=Path, metavar="FILE")
    check.set_defaults(run=cmd_check_config)

    htpasswd = commands.add_parser("htpasswd", help="add or change a user's password (bcrypt)")
    htpasswd.add_argument("file", type=Path, metavar="FILE")
    htpasswd.add_argument("user", metavar="USER")
    htpasswd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    htpasswd.set_defaults(run=cmd_htpasswd)
    return main


def configure_logging(level: str) -> None:
    """davgate's own loggers at ``level``; WsgiDAV's internals only when they warn."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    wsgidav = logging.getLogger("wsgidav")
    wsgidav.propagate = True
    wsgidav.setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return args.run(args)
    except ConfigError as error:
        print(f"davgate: configuration error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"davgate: {error}", file=sys.stderr)
        return 1
