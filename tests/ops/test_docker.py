"""docker/ checked without a Docker engine: the files parse, agree with each other, and the config loads.

The same topology runs for real, without containers, in
tests/live/test_loadbalancer.py (nginx with docker/nginx.conf in front of
two davgate processes).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from davgate.config import parse_config
from davgate.hardening import check_transport
from tests.helpers import write_htpasswd
from tests.ops.nginx import Nginx, render

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
REPLICAS = ("davgate-1", "davgate-2")
COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")
REQUIRED = {"DAVGATE_ADMIN_TOKEN": "an-admin-token-of-32-characters!"}  # what an operator puts in docker/.env


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def davgate_yaml() -> str:
    return (DOCKER / "davgate.yaml").read_text()


def expand(value: Any) -> str:
    """A compose value as compose expands it with docker/.env holding just the required variables."""

    def one(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        if kind == "?":
            assert name in REQUIRED and name in (DOCKER / "README.md").read_text(), (
                f"docker/README.md must ask for {name}"
            )
            return REQUIRED[name]
        return REQUIRED.get(name, text or "")

    return COMPOSE_VAR.sub(one, str(value))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def config_port() -> int:
    return yaml.safe_load(davgate_yaml())["server"]["port"]


def test_compose_has_the_topology() -> None:
    services = compose()["services"]
    assert set(services) >= {*REPLICAS, "lb", "mongo", "ceph"}
    first, second = (services[name] for name in REPLICAS)
    assert first == second, "the replicas differ"
    assert (
        first["build"]["dockerfile"] == "docker/Dockerfile" and (DOCKER / first["build"]["context"]).resolve() == REPO
    )
    assert services["lb"]["image"].startswith("nginx:")
    assert "ceph" in services["ceph"]["image"] and services["mongo"]["image"].startswith("mongo:")
    assert services["lb"]["ports"] == [f"127.0.0.1:8080:{config_port()}"]
    assert not any("ports" in services[name] for name in (*REPLICAS, "mongo", "ceph")), (
        "only the load balancer is published"
    )


def test_volumes_networks_secrets_and_dependencies_are_declared() -> None:
    data = compose()
    services = data["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in data["volumes"], f"{name}: volume {source} is not declared"
        for network in service.get("networks", []):
            assert network in data["networks"], f"{name}: network {network} is not declared"
        for secret in service.get("secrets", []):
            assert secret in data["secrets"], f"{name}: secret {secret} is not declared"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    replica = services[REPLICAS[0]]
    assert "data:/srv/data" in replica["volumes"], "the replicas must share the /data volume"
    assert services["ceph"]["networks"]["backend"]["ipv4_address"] == services["ceph"]["environment"]["MON_IP"]


def test_secret_files_are_not_committed() -> None:
    ignored = (DOCKER / ".gitignore").read_text().split()
    assert "htpasswd" in ignored and ".env" in ignored
    assert compose()["secrets"]["htpasswd"]["file"] == "./htpasswd"


def test_nginx_sends_to_every_replica_and_listens_where_compose_publishes() -> None:
    text = (DOCKER / "nginx.conf").read_text()
    upstream = re.search(r"upstream davgate \{(.*?)\}", text, re.DOTALL)
    assert upstream is not None
    servers = re.findall(r"^\s*server (\S+)", upstream.group(1), re.MULTILINE)
    assert servers == [f"{name}:{config_port()}" for name in REPLICAS]
    published = compose()["services"]["lb"]["ports"][0].rsplit(":", 1)[1]
    assert re.search(rf"^\s*listen {published};$", text, re.MULTILINE)


def test_nginx_conf_is_valid_for_nginx(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path)
    nginx.write_config(["127.0.0.1:1", "127.0.0.1:2"], 3)
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    assert "proxy_request_buffering off" in render(["a:1"], "b:2")


def test_the_image_is_slim_non_root_and_health_checked() -> None:
    steps = dockerfile()
    assert [args.split()[0] for kind, args in steps if kind == "FROM"] == ["python:3.11-slim"] * 2
    final = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    users = [args for kind, args in final if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must run as a non-root user"
    health = " ".join(args for kind, args in final if kind == "HEALTHCHECK")
    assert f"http://127.0.0.1:{config_port()}/healthz" in health
    assert [args for kind, args in final if kind == "EXPOSE"] == [str(config_port())]
    for kind, args in steps:
        if kind == "COPY" and not args.startswith("--from"):
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    command = " ".join(args for kind, args in final if kind in ("ENTRYPOINT", "CMD"))
    assert '"davgate"' in command and "/etc/davgate/davgate.yaml" in command


def test_the_image_installs_exactly_the_servers_lock() -> None:
    runs = [args for kind, args in dockerfile() if kind == "RUN" and "pip install" in args]
    assert len(runs) == 2
    assert "--require-hashes --no-deps -r requirements/serve.lock" in runs[0]
    assert "--no-deps" in runs[1] and runs[1].endswith(" .")


def container_paths(tmp_path: Path) -> dict[str, Path]:
    """Where the container's paths come from: the image (COPY), volumes and secrets, mapped to test folders."""
    paths: dict[str, Path] = {}
    for kind, args in dockerfile():
        if kind == "COPY" and not args.startswith("--from"):
            source, target = shlex.split(args)[-2:]
            if target.startswith("/"):
                paths[target] = REPO / source
    replica = compose()["services"][REPLICAS[0]]
    for volume in replica["volumes"]:
        name, target = volume.split(":")[:2]
        paths[target] = tmp_path / "volumes" / name
        paths[target].mkdir(parents=True)
    for secret in replica["secrets"]:
        paths[f"/run/secrets/{secret}"] = write_htpasswd(tmp_path / secret)
    return paths


def test_the_config_loads_with_davgates_own_loader(tmp_path: Path) -> None:
    replica = compose()["services"][REPLICAS[0]]
    environ: Mapping[str, str] = {name: expand(value) for name, value in replica["environment"].items()}
    text = davgate_yaml()
    for name, default in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}", text):
        assert name in environ or default, f"davgate.yaml uses ${{{name}}}, which compose does not set"
    for target, source in sorted(container_paths(tmp_path).items(), key=lambda item: -len(item[0])):
        text = text.replace(target, str(source))
    assert not re.search(r"(?<![\w.])/(srv|etc|run|var)/", text), "davgate.yaml names a path the image does not provide"
    config = parse_config(yaml.safe_load(text), "docker/davgate.yaml", environ)
    check_transport(config)  # it would start
    assert config.server.workers == 2 and config.server.log_format == "json"
    assert config.state.type == "mongo" and config.state.url == "mongodb://mongo:27017"
    assert config.cache is not None and config.cache.type == "s3"
    assert config.api.admin_token == REQUIRED["DAVGATE_ADMIN_TOKEN"]
    rgw_port = compose()["services"]["ceph"]["environment"]["RGW_FRONTEND_PORT"]
    assert config.cache.endpoint == f"http://ceph:{rgw_port}" == config.mounts["/ceph"].endpoint
    assert {"/data", "/ceph", "/dispel"} <= set(config.mounts)


@pytest.mark.parametrize("name", ["Dockerfile", "compose.yaml", "nginx.conf", "davgate.yaml", ".gitignore"])
def test_docker_readme_describes_each_file(name: str) -> None:
    assert f"`{name}`" in (DOCKER / "README.md").read_text()


def test_the_postgres_profile_gives_the_replicas_a_postgres_store(tmp_path: Path) -> None:
    """What docker/README.md has an operator put in docker/.env for the postgres profile, loaded by davgate."""
    services = compose()["services"]
    assert services["postgres"]["profiles"] == ["postgres"] and services["mongo"]["profiles"] == ["mongo"]
    assert services["postgres"]["image"].startswith("postgres:")
    dependencies = services[REPLICAS[0]]["depends_on"]
    assert dependencies["postgres"]["required"] is False and dependencies["mongo"]["required"] is False
    url = "postgresql://davgate:a-password@postgres:5432/davgate"
    chosen = {**REQUIRED, "STATE_TYPE": "postgres", "STATE_URL": url}
    environ = {name: COMPOSE_VAR.sub(lambda m: chosen.get(m[1], m[3] or ""), str(value))
               for name, value in services[REPLICAS[0]]["environment"].items()}  # fmt: skip
    text = davgate_yaml()
    for target, source in sorted(container_paths(tmp_path).items(), key=lambda item: -len(item[0])):
        text = text.replace(target, str(source))
    config = parse_config(yaml.safe_load(text), "docker/davgate.yaml", environ)
    assert config.state.type == "postgres" and config.state.url == url
