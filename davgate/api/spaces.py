"""The infrastructures as one process serves them: their mounts and access methods.

:class:`LiveSpaces` is the :class:`~davgate.namespace.LiveMounts` of the
namespace: when the store's infrastructure generation changes (any process
created or deleted one), it reads every record again, keeps the spaces whose
record is unchanged, builds the new ones and retires the old ones (their
connections are closed a minute later, when no request can still use them).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from davgate.api.checks import is_name
from davgate.api.credentials import SpaceCredentials, credentials_for
from davgate.api.quotas import Quotas
from davgate.api.sealing import Sealer
from davgate.api.spec import Adaptor, InfraSpec
from davgate.api.tokens import ADMIN, ServerTokens
from davgate.api.volumes import NativeVolume
from davgate.auth.jwt import JwtPolicy
from davgate.config import schema
from davgate.hardening.outbound import OutboundRule
from davgate.providers import Mount
from davgate.state import InfraRecord, StateStore

__all__ = ["Folders", "LiveSpaces", "MountFactory", "Space"]

log = logging.getLogger("davgate.api")

RETIRE_SECONDS = 60.0
ADAPTOR_TIMEOUT = 10.0
SSH_CONNECTIONS = 2


@dataclass(frozen=True)
class Folders:
    """Where the API keeps files: enrolled SSH keys below ``root``, native volumes below ``volumes``.

    A volume belongs to its infrastructure's id, so a name taken again
    starts empty; the volumes of a record stored before ids (its id is its
    name) stay where they were, below ``root/volumes/<name>``.
    """

    root: Path
    volumes: Path

    def volume(self, record: InfraRecord, adaptor: str) -> Path:
        if record.legacy:
            return self.root / "volumes" / record.name / adaptor
        return self.volumes / record.id / adaptor

    def keys(self, infrastructure: str) -> Path:
        return self.root / "api-keys" / infrastructure


def owner_registered(store: StateStore, owner: str) -> bool:
    """Whether ``owner`` is still an API user (the administrator always is)."""
    return owner == ADMIN or store.api_user_get(owner) is not None


class MountFactory:
    """Makes the Mount of an adaptor of a stored description; its connections go through the outbound rule."""

    def __init__(
        self, store: StateStore, folders: Folders, sealer: Sealer, quotas: Quotas, outbound: OutboundRule
    ) -> None:
        self.store, self.folders, self.sealer, self.quotas, self.outbound = store, folders, sealer, quotas, outbound

    def build(self, record: InfraRecord, adaptor: Adaptor) -> Mount:
        path = f"/{record.name}/{adaptor.name}"
        mount = getattr(self, f"build_{adaptor.type}")(path, record, adaptor)
        mount.use_state(self.store)
        return mount

    def build_native(self, path: str, record: InfraRecord, adaptor: Adaptor) -> Mount:
        root = self.folders.volume(record, adaptor.name)
        root.mkdir(parents=True, exist_ok=True)
        room = partial(self.quotas.volume_room, record.owner)
        return NativeVolume(path, schema.LocalMount(type="local", root=root), room, self.quotas.volume_full)

    def build_sshfs(self, path: str, record: InfraRecord, adaptor: Adaptor) -> Mount:
        from davgate.providers.sftp import SftpMount

        o = adaptor.options
        options = schema.SftpMount(
            type="sftp", host=o["host"], user=o["user"], key=Path(o["key"]), port=o["port"], root=o["path"],
            timeout=ADAPTOR_TIMEOUT, connections=SSH_CONNECTIONS,
        )  # fmt: skip
        return SftpMount(path, options, self.outbound.opener("sshfs"))

    def build_s3(self, path: str, record: InfraRecord, adaptor: Adaptor) -> Mount:
        from davgate.providers.s3 import S3Mount

        o = adaptor.options
        options = schema.S3Mount(
            type="s3", endpoint=o["endpoint"], bucket=o["bucket"], access_key=o["access_key"],
            secret_key=self.sealer.open(o["sealedSecret"]), region=o.get("region", "us-east-1"),
            prefix=o.get("prefix", ""), timeout=ADAPTOR_TIMEOUT, create_bucket=o.get("create_bucket", False),
        )  # fmt: skip
        return S3Mount(path, options, self.outbound.opener("s3"))


@dataclass
class Space:
    """One infrastructure: its description, its mounts by path, its access methods."""

    record: InfraRecord
    spec: InfraSpec
    mounts: dict[str, Mount]
    credentials: SpaceCredentials

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def indexed(self) -> bool:
        """Whether it has a query container, so the query index covers it."""
        return bool(self.spec.of_type("query"))

    def adaptor(self, name: str) -> Mount | None:
        return self.mounts.get(f"/{self.name}/{name}")

    def close(self) -> None:
        for mount in self.mounts.values():
            try:
                mount.close()
            except Exception:  # noqa: BLE001 -- closing is best effort
                log.exception("closing %s failed", mount.path)


class LiveSpaces:
    """Every infrastructure's space, rebuilt from the store when its generation changes."""

    def __init__(self, store: StateStore, factory: MountFactory, server: ServerTokens, policy: JwtPolicy) -> None:
        self.store, self.factory, self.server, self.policy = store, factory, server, policy
        self.spaces: dict[str, Space] = {}
        self.retired: list[tuple[float, Space]] = []
        self.lock = threading.Lock()

    def generation(self) -> int:
        return self.store.infra_generation()

    def mounts(self) -> dict[str, Mount]:
        records = self.store.infra_list()
        with self.lock:
            old, new = self.spaces, {}
            for record in records:
                space = old.get(record.name)
                if space is None or space.record != record:
                    space = self.build_or_skip(record)
                if space is not None:
                    new[record.name] = space
            now = time.monotonic()
            self.retired += [(now, space) for name, space in old.items() if new.get(name) is not space]
            self.spaces = new
            self.close_retired(now - RETIRE_SECONDS)
        return {path: mount for space in new.values() for path, mount in space.mounts.items()}

    def build_or_skip(self, record: InfraRecord) -> Space | None:
        """The record's space, or None, logged, if it cannot be served: one bad record never stops the others.

        A name the current rule refuses (stored by an older version), a
        description that cannot be read: the operator can still remove the
        record by its exact name (``DELETE /api/v1/infrastructure?name=``).
        """
        if not is_name(record.name):
            log.error("infrastructure %a cannot be served: its name is not a valid name; skipped", record.name)
            return None
        try:
            return self.build(record)
        except Exception as error:  # noqa: BLE001 -- serve the others
            log.error("infrastructure %s cannot be served: %s: %s; skipped", record.name, type(error).__name__, error)
            return None

    def build(self, record: InfraRecord) -> Space:
        spec = InfraSpec.from_json(record.spec)
        mounts = {}
        for adaptor in spec.adaptors:
            if not is_name(adaptor.name):
                log.error("infrastructure %s: adaptor %a cannot be served: not a valid name", record.name, adaptor.name)
                continue
            try:
                mount = self.factory.build(record, adaptor)
            except Exception as error:  # noqa: BLE001 -- serve the adaptors that work
                log.error("infrastructure %s: adaptor %s cannot be served: %s", record.name, adaptor.name, error)
                continue
            mounts[mount.path] = mount
        registered = partial(owner_registered, self.store, record.owner)
        return Space(record, spec, mounts, credentials_for(spec, record.owner, self.server, self.policy, registered))

    def get(self, name: str) -> Space | None:
        return self.spaces.get(name)

    def all(self) -> list[Space]:
        return list(self.spaces.values())

    def close_retired(self, before: float) -> None:
        keep = []
        for when, space in self.retired:
            if when <= before:
                space.close()
            else:
                keep.append((when, space))
        self.retired = keep

    def close(self) -> None:
        with self.lock:
            for space in self.spaces.values():
                space.close()
            self.spaces = {}
            self.close_retired(float("inf"))
