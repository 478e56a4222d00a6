"""Micro-infrastructures: create, describe, list and remove them.

Creating one checks the description (:mod:`davgate.api.spec`), prepares
each adaptor (a native volume's folder; an sshfs host's enrolment, whose
password is used once and dropped; an S3 bucket's check, with the secret
key sealed), turns webdav passwords into bcrypt hashes, then stores the
record. Storing it bumps the store's generation, so every davgate process
serves ``/<name>/`` within about a second, this one at once.

Removing one forgets the record and the query index of it, revokes the
enrolled keys on their hosts (best effort: a host that is down keeps the
line in ``authorized_keys``; it is logged) and deletes them here. Native
volumes keep their files unless ``?purge=true``.

An infrastructure is its id (made at creation), not its name: its native
volumes and query index are kept by id, so a user who takes a freed name
starts empty. Dead properties and locks are kept by path, as WsgiDAV names
them; those below ``/<name>/`` go with the infrastructure, and once more
just before a new one takes the name (a request that was still running on
the old one may have left some).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from davgate import errors
from davgate.api.checks import is_name
from davgate.api.errors import ApiError, BadGateway, BadRequest, Conflict, Forbidden, NotFound
from davgate.api.spaces import Folders, MountFactory
from davgate.api.spec import Adaptor, InfraSpec, Logic, Secrets, address_of, parse, readable
from davgate.api.tokens import Caller
from davgate.auth.hashes import hash_password
from davgate.config import ConfigError
from davgate.hardening.outbound import Opener, OutboundRefused
from davgate.namespace import Namespace
from davgate.state import InfraRecord, StateStore

__all__ = ["Registry", "describe", "endpoints"]

log = logging.getLogger("davgate.api")

INTERNAL_FIELDS = frozenset({"key", "passwordHash", "sealedSecret"})  # stored, never shown
ENROL_TIMEOUT = 15.0


class Registry:
    """Creates and removes infrastructures for API callers."""

    def __init__(self, store: StateStore, namespace: Namespace, factory: MountFactory, folders: Folders) -> None:
        self.store, self.namespace, self.factory, self.folders = store, namespace, factory, folders
        self.on_created: list[Any] = []  # callables(InfraRecord, InfraSpec): the query index seeds itself
        self.quotas = factory.quotas

    def visible(self, caller: Caller) -> list[InfraRecord]:
        return self.store.infra_list(None if caller.admin else caller.name)

    def get(self, caller: Caller, name: str) -> InfraRecord:
        record = self.store.infra_get(name)
        if record is None:
            raise NotFound(f"no infrastructure {name!r}")
        if record.owner != caller.name and not caller.admin:
            raise Forbidden(f"infrastructure {name!r} belongs to another user")
        return record

    def create(self, caller: Caller, body: Any) -> InfraRecord:
        spec, secrets = parse(body)
        if spec.name in self.namespace.static_tops or self.store.infra_get(spec.name) is not None:
            raise Conflict(f"/{spec.name}/ exists already", "exists")
        self.quotas.infrastructure(caller.name)
        draft = InfraRecord(spec.name, caller.name, "", time.time(), uuid.uuid4().hex)
        keys: list[Adaptor] = []
        try:
            adaptors = tuple(self.prepare(draft, adaptor, secrets, keys) for adaptor in spec.adaptors)
            logic = tuple(prepare_logic(item, secrets) for item in spec.logic)
            final = InfraSpec(spec.name, adaptors, logic, spec.extra)
            record = dataclasses.replace(draft, spec=final.to_json(), created=time.time())
            forget_path_records(self.store, spec.name)
            if not self.store.infra_create(record):
                raise Conflict(f"/{spec.name}/ exists already", "exists")
        except BaseException:
            self.forget_keys(keys, revoke=True)
            raise
        for callback in self.on_created:
            callback(record, final)
        self.namespace.refresh(wait=True)
        log.info("infrastructure %s (%s) created by %s", spec.name, record.id, caller.name)
        return record

    def prepare(self, draft: InfraRecord, adaptor: Adaptor, secrets: Secrets, keys: list[Adaptor]) -> Adaptor:
        self.check_outbound(adaptor)
        options = dict(adaptor.options)
        if adaptor.type == "sshfs":
            options["key"] = str(self.enrol(draft.name, adaptor, secrets.pop("sshfs", adaptor.name)))
            keys.append(Adaptor(adaptor.name, adaptor.type, options))
        elif adaptor.type == "s3":
            options["sealedSecret"] = self.factory.sealer.seal(secrets.pop("s3", adaptor.name))
        prepared = Adaptor(adaptor.name, adaptor.type, options)
        if adaptor.type == "s3":
            self.check_bucket(draft, prepared)
        return prepared

    def check_outbound(self, adaptor: Adaptor) -> None:
        """400 if the outbound rule refuses where the adaptor connects, before any connection is tried.

        The answer is the same whether anything listens there or not, so the
        API cannot be used to scan ports inside the network.
        """
        address = address_of(adaptor)
        if address is None:
            return
        try:
            self.factory.outbound.check(adaptor.type, *address)
        except OutboundRefused as refused:
            raise BadRequest(f"adaptor {adaptor.name}: {refused.reason}", "outbound_refused") from None
        except OSError:
            return  # no such name: connecting fails, and says so

    def enrol(self, name: str, adaptor: Adaptor, password: str) -> Path:
        """Install a new key on the host with the password, used once; the key's path."""
        from davgate.providers.sftp.enroll import enroll

        o = adaptor.options
        key = self.folders.keys(name) / f"{adaptor.name}-{uuid.uuid4().hex[:12]}"
        try:
            enroll(o["host"], o["port"], o["user"], password, key, store=self.store, timeout=ENROL_TIMEOUT,
                   opener=self.factory.outbound.opener("sshfs"))  # fmt: skip
        except errors.StorageError as error:
            remove_key_files(key)
            raise adaptor_error(adaptor, "enrolment failed", error) from None
        finally:
            del password
        return key

    def check_bucket(self, draft: InfraRecord, adaptor: Adaptor) -> None:
        mount = self.factory.build(draft, adaptor)
        try:
            mount.start()
        except Exception as error:  # noqa: BLE001 -- a configuration error or a storage error
            raise adaptor_error(adaptor, "bucket check failed", error) from None
        finally:
            mount.close()

    def delete(self, caller: Caller, name: str, purge: bool) -> None:
        record = self.get(caller, name)
        if not self.store.infra_delete(name, record.id):
            raise NotFound(f"no infrastructure {name!r}")
        self.store.index_drop(record.id)
        forget_path_records(self.store, name)
        self.namespace.refresh(wait=True)
        adaptors = stored_adaptors(record)
        self.forget_keys([a for a in adaptors if a.type == "sshfs"], revoke=True)
        if purge and is_name(name):  # a name from an older version may not be a safe folder name
            for adaptor in adaptors:
                if adaptor.type == "native" and is_name(adaptor.name):
                    shutil.rmtree(self.folders.volume(record, adaptor.name), ignore_errors=True)
        log.info("infrastructure %a removed by %s%s", name, caller.name, " (volumes purged)" if purge else "")

    def forget_keys(self, adaptors: list[Adaptor], *, revoke: bool) -> None:
        for adaptor in adaptors:
            key = Path(adaptor.options["key"])
            if revoke:
                revoke_key(self.store, adaptor, key, self.factory.outbound.opener("sshfs"))
            remove_key_files(key)


def stored_adaptors(record: InfraRecord) -> tuple[Adaptor, ...]:
    """The adaptors of a stored record; none, logged, if its description cannot be read (removing it still works)."""
    spec = readable(record.spec)
    if spec is None:
        log.error("infrastructure %a: its description cannot be read; its keys and volumes are left", record.name)
        return ()
    return spec.adaptors


def forget_path_records(store: StateStore, name: str) -> None:
    """Drop the dead properties and locks below ``/<name>/``: they belonged to whoever had the name."""
    top = f"/{name}"
    store.remove_properties(top, with_children=True)
    for lock in store.list_locks(top, include_root=True, include_children=True):
        store.delete_lock(lock.token)


def prepare_logic(item: Logic, secrets: Secrets) -> Logic:
    if item.type != "webdav":
        return item
    options = {**item.options, "passwordHash": hash_password(secrets.pop("webdav", item.name))}
    return Logic(item.name, item.type, options)


def adaptor_error(adaptor: Adaptor, what: str, error: Exception) -> ApiError:
    """400 when the description is at fault (refused login or keys, no bucket), else 502."""
    detail = getattr(error, "detail", None) or getattr(error, "problem", None) or type(error).__name__
    if isinstance(error, (errors.Forbidden, errors.NotFound, ConfigError)) or type(error).__name__ == "LoginRefused":
        return BadRequest(f"adaptor {adaptor.name}: {what}: {detail}", "adaptor_refused")
    return BadGateway(f"adaptor {adaptor.name}: {what}: {detail}")


def revoke_key(store: StateStore, adaptor: Adaptor, key: Path, opener: Opener) -> None:
    """Remove our line from the host's authorized_keys, logging in with that key."""
    from davgate.api.sshkeys import revoke

    try:
        revoke(adaptor.options["host"], adaptor.options["port"], adaptor.options["user"], key, store, opener)
    except Exception as error:  # noqa: BLE001 -- best effort: the host may be down
        log.warning("adaptor %s: could not remove davgate's key from the host (%s)", adaptor.name, error)


def remove_key_files(key: Path) -> None:
    for path in (key, Path(f"{key}.pub")):
        path.unlink(missing_ok=True)


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key not in INTERNAL_FIELDS}


def describe(record: InfraRecord, base: str) -> dict[str, Any]:
    """An infrastructure as ``GET /api/v1/infrastructure/<name>`` shows it: no secrets, no hashes."""
    spec = InfraSpec.from_json(record.spec)
    return {
        "name": spec.name, **spec.extra, "owner": record.owner, "created": record.created,
        "storageAdaptorContainers": [{"name": a.name, "type": a.type, **public_options(a.options)} for a in spec.adaptors],
        "logicContainers": [
            {"name": item.name, "type": item.type, **public_options(item.options)} for item in spec.logic
        ],
        "endpoints": endpoints(record, base),
    }  # fmt: skip


def endpoints(record: InfraRecord, base: str) -> list[dict[str, Any]]:
    """The services of one infrastructure, in the seed's shape with URLs in place of Kubernetes ports."""
    spec = InfraSpec.from_json(record.spec)
    host, port = host_and_port(base)
    where = {"infrastructure": spec.name, "host": host, "port": port}
    url = f"{base}/{spec.name}/"
    found: list[dict[str, Any]] = []
    for item in spec.logic:
        entry = {"type": item.type, "name": f"{spec.name}-{item.name}", **where}
        if item.type == "webdav":
            entry.update(url=url, user=item.options["user"])
        elif item.type == "webdav-jwt":
            entry.update(url=url, users=sorted(item.options["users"]))
        else:
            api = f"{base}/api/v1"
            entry.update(url=f"{api}/", list=f"{api}/list?infrastructure={spec.name}",
                         find=f"{api}/find/{{name}}?infrastructure={spec.name}", copy=f"{api}/copy")  # fmt: skip
        found.append(entry)
    for adaptor in spec.adaptors:
        found.append({"type": "storage", "adaptor": adaptor.type, "name": f"{spec.name}-{adaptor.name}", **where,
                      "url": f"{url}{adaptor.name}/"})  # fmt: skip
    return found


def host_and_port(base: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
