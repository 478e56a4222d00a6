"""The anchors, started on free loopback ports over the same data as davgate.

- stock WsgiDAV 4.4.0 + cheroot 11.1.2 (bench/.venv-stock): its
  FilesystemProvider, the in-memory property store and lock storage, no
  authentication, request logging off;
- ``rclone serve webdav`` (Debian's rclone) with default options;
- nginx (Debian's, with the dav-ext module): its own config, prefix and
  temp folders under the work folder, every socket on 127.0.0.1;
- TiTiler (titiler.core on rio-tiler and GDAL, bench/.venv-titiler) under
  uvicorn with as many workers as davgate, for the DISPEL phases only
  (bench.imaging).

None of them authenticates; davgate does (see bench.davgate_server).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bench.procs import BenchError, Server, free_port, owns_listener, spawn, stop, wait_ready

REPO = Path(__file__).resolve().parent.parent
STOCK_VENV = REPO / "bench" / ".venv-stock"
TITILER_VENV = REPO / "bench" / ".venv-titiler"
DAV_EXT_MODULE = Path("/usr/share/nginx/modules/ngx_http_dav_ext_module.so")
PORT_TRIES = 5


def start_on_free_port(name: str, launch, work: Path) -> Server:
    """Start ``launch(port, folder)``; retry on another port if a stranger took it first."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(PORT_TRIES):
        port = free_port()
        server = launch(port, folder)
        server.url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(server, server.url + "/")
        except BenchError:
            stop(server)
            raise
        if owns_listener(server.pid, port):
            return server
        stop(server)
    raise BenchError(f"{name}: no free port after {PORT_TRIES} tries")


def stock_wsgidav(root: Path, work: Path) -> Server:
    executable = STOCK_VENV / "bin" / "wsgidav"
    if not executable.exists():
        raise BenchError(f"{executable} is missing: run bash scripts/setup.sh --bench")

    def launch(port: int, folder: Path) -> Server:
        config = {
            "host": "127.0.0.1",
            "port": port,
            "server": "cheroot",
            "provider_mapping": {"/": str(root)},
            "http_authenticator": {
                "domain_controller": None,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "simple_dc": {"user_mapping": {"*": True}},  # anonymous
            "property_manager": True,  # in memory
            "lock_storage": True,  # in memory
            "verbose": 1,
            "logging": {"enable": False},
        }
        path = folder / "wsgidav.json"
        path.write_text(json.dumps(config))
        return spawn("wsgidav", [str(executable), "--config", str(path)], folder / "log")

    return start_on_free_port("wsgidav", launch, work)


def rclone(root: Path, work: Path) -> Server:
    executable = shutil.which("rclone")
    if executable is None:
        raise BenchError("rclone is missing: run bash scripts/setup.sh --bench")

    def launch(port: int, folder: Path) -> Server:
        config = folder / "rclone.conf"
        config.touch()
        command = [
            executable,
            "serve",
            "webdav",
            str(root),
            "--addr",
            f"127.0.0.1:{port}",
            "--config",
            str(config),
            "-q",
        ]
        return spawn("rclone", command, folder / "log")

    return start_on_free_port("rclone", launch, work)


NGINX_CONF = """\
daemon off;
master_process on;
user root;
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
load_module {module};
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    default_type application/octet-stream;
    client_max_body_size 0;
    client_body_temp_path {body_temp};
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        dav_methods PUT DELETE MKCOL COPY MOVE;
        dav_ext_methods PROPFIND OPTIONS;
        create_full_put_path on;
        dav_access user:rw group:r all:r;
        autoindex on;
    }}
}}
"""


def nginx(root: Path, work: Path, body_temp: Path) -> Server:
    """nginx; ``body_temp`` must be on the data's file system (PUT bodies are renamed from there)."""
    executable = shutil.which("nginx")
    if executable is None or not DAV_EXT_MODULE.exists():
        raise BenchError("nginx or its dav-ext module is missing: run bash scripts/setup.sh --bench")
    body_temp.mkdir(parents=True, exist_ok=True)

    def launch(port: int, folder: Path) -> Server:
        config = folder / "nginx.conf"
        text = NGINX_CONF.format(folder=folder, module=DAV_EXT_MODULE, body_temp=body_temp, port=port, root=root)
        config.write_text(text)
        command = [executable, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
        return spawn("nginx", command, folder / "log", env=dict(os.environ))

    return start_on_free_port("nginx", launch, work)


def titiler(work: Path, workers: int) -> Server:
    executable = TITILER_VENV / "bin" / "uvicorn"
    if not executable.exists():
        raise BenchError(f"{executable} is missing: run bash scripts/setup.sh --bench")

    def launch(port: int, folder: Path) -> Server:
        command = [
            str(executable), "bench.titiler_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        env = dict(os.environ, GDAL_CACHEMAX="64", CPL_LOG_ERRORS="OFF")
        return spawn("titiler", command, folder / "log", env=env, cwd=REPO)

    return start_on_free_port("titiler", launch, work)
