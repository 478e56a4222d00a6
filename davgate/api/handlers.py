"""The API's calls, one method each; :meth:`Handlers.register` lists them with their paths."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from davgate.api import metadata, staging
from davgate.api.checks import TEXT, fields
from davgate.api.errors import BadRequest, Forbidden, NotFound
from davgate.api.infrastructures import describe, endpoints, host_and_port
from davgate.api.openapi import document
from davgate.api.query import render
from davgate.api.routes import Reply, Request, Router
from davgate.api.tokens import Caller
from davgate.state import InfraRecord

if TYPE_CHECKING:
    from davgate.api.service import ApiService

__all__ = ["Handlers"]

logger = logging.getLogger("davgate.api")
TOKEN_ENDPOINT = {"type": "token", "header": "x-access-token"}


def shown(record: InfraRecord, base: str) -> list[dict[str, Any]]:
    """The endpoints of a record; none, logged, if it cannot be read (one bad record never hides the others)."""
    try:
        return endpoints(record, base)
    except Exception as error:  # noqa: BLE001 -- a record stored broken, or by an older version
        logger.error("infrastructure %a cannot be listed: %s: %s", record.name, type(error).__name__, error)
        return []


class Handlers:
    """What each call does, over the service's parts."""

    def __init__(self, service: ApiService) -> None:
        self.service = service
        self.store = service.store

    def register(self, router: Router) -> None:
        add = router.add
        add("GET", "/openapi.json", self.openapi, "public")
        add("PUT", "/user", self.put_user, "admin")
        add("GET", "/user", self.list_users, "admin")
        add("DELETE", "/user/{email}", self.delete_user, "admin")
        add("GET", "/infrastructure", self.list_infrastructures)
        add("POST", "/infrastructure", self.create_infrastructure)
        add("GET", "/infrastructure/{name}", self.get_infrastructure)
        add("DELETE", "/infrastructure/{name}", self.delete_infrastructure)
        add("DELETE", "/infrastructure", self.delete_any_infrastructure, "admin")
        add("GET", "/list", self.list_files)
        add("GET", "/find/{name}", self.find_file)
        add("POST", "/copy", self.post_copy)
        add("GET", "/copy", self.list_copies)
        add("GET", "/copy/{id}", self.get_copy)
        add("PUT", "/metadata/{collection}/{id}", self.put_metadata)
        add("GET", "/metadata/{collection}/{id}", self.get_metadata)
        add("DELETE", "/metadata/{collection}/{id}", self.delete_metadata)
        add("GET", "/metadata/{collection}", self.query_metadata)

    def openapi(self, request: Request) -> Reply:
        return Reply(200, document(self.service.base_url(request.environ)))

    # -- users ------------------------------------------------------------------

    def put_user(self, request: Request) -> Reply:
        body = fields(request.json(), "", {"email": TEXT, "name": TEXT})
        email = body["email"].strip()
        if not (0 < len(email) <= 254 and "@" in email and email.isprintable() and not any(c in email for c in " :/")):
            raise BadRequest("email: expected an e-mail address", "invalid_value")
        created = self.store.api_user_put(email, body["name"])
        token = self.service.tokens.mint(email)
        expires = int(time.time()) + self.service.options.token_ttl
        return Reply(201 if created else 200, {"token": token, "email": email, "expires": expires})

    def list_users(self, request: Request) -> Reply:
        return Reply(200, [{"email": u.email, "name": u.name, "created": u.created} for u in self.store.api_users()])

    def delete_user(self, request: Request) -> Reply:
        if not self.store.api_user_delete(request.params["email"]):
            raise NotFound("no such user")
        return Reply(204)

    # -- infrastructures ----------------------------------------------------------

    def list_infrastructures(self, request: Request) -> Reply:
        base = self.service.base_url(request.environ)
        found = [entry for record in self.service.registry.visible(request.caller) for entry in shown(record, base)]
        return Reply(200, [*found, TOKEN_ENDPOINT])

    def create_infrastructure(self, request: Request) -> Reply:
        record = self.service.registry.create(request.caller, request.json())
        base = self.service.base_url(request.environ)
        location = [("Location", f"{base}/api/v1/infrastructure/{record.name}")]
        return Reply(201, {"name": record.name, "endpoints": endpoints(record, base)}, location)

    def get_infrastructure(self, request: Request) -> Reply:
        record = self.service.registry.get(request.caller, request.params["name"])
        return Reply(200, describe(record, self.service.base_url(request.environ)))

    def delete_infrastructure(self, request: Request) -> Reply:
        purge = request.query.get("purge", "").lower() in ("1", "true", "yes")
        self.service.registry.delete(request.caller, request.params["name"], purge)
        return Reply(204)

    def delete_any_infrastructure(self, request: Request) -> Reply:
        """``?name=`` (percent-encoded): any stored name, even one no path can carry (from an older version)."""
        name = request.query.get("name")
        if not name:
            raise BadRequest("name: the exact stored name is required (?name=, percent-encoded)", "missing_field")
        purge = request.query.get("purge", "").lower() in ("1", "true", "yes")
        self.service.registry.delete(request.caller, name, purge)
        return Reply(204)

    # -- query ----------------------------------------------------------------------

    def list_files(self, request: Request) -> Reply:
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in self.files(request, None):
            found.setdefault(entry["basename"], []).append(entry)
        return Reply(200, found)

    def find_file(self, request: Request) -> Reply:
        return Reply(200, self.files(request, request.params["name"]))

    def files(self, request: Request, name: str | None) -> list[dict[str, Any]]:
        base = self.service.base_url(request.environ)
        host, port = host_and_port(base)
        found = []
        for record in self.indexed(request):
            space = self.service.spaces.get(record.name)
            if space is not None and space.record.id == record.id:
                found += [render(e, space, base, host, port) for e in self.store.index_files(record.id, name)]
        return found

    def indexed(self, request: Request) -> list[InfraRecord]:
        """The caller's infrastructures with a query container (or the one named in ``?infrastructure``)."""
        wanted = request.query.get("infrastructure")
        records = self.service.registry.visible(request.caller)
        if wanted is not None:
            records = [r for r in records if r.name == wanted]
            if not records:
                raise NotFound(f"no infrastructure {wanted!r} of yours")
        self.service.namespace.refresh(wait=True)
        return records

    # -- staging ----------------------------------------------------------------------

    def post_copy(self, request: Request) -> Reply:
        visible = self.service.registry.visible(request.caller)
        options = self.service.options
        jobs = staging.parse_jobs(request.json(), request.caller, visible, options.webhook_allow, self.service.outbound)
        self.service.quotas.jobs(request.caller.name, len(jobs))
        staging.queue(self.store, jobs)
        self.service.stager.poke()
        base = self.service.base_url(request.environ)
        return Reply(202, [{"id": j.id, "state": j.state, "url": f"{base}/api/v1/copy/{j.id}"} for j in jobs])

    def list_copies(self, request: Request) -> Reply:
        return Reply(200, [staging.show(job) for job in self.store.job_list(request.caller.name)])

    def get_copy(self, request: Request) -> Reply:
        job = self.store.job_get(request.caller.name, request.params["id"])
        if job is None:
            raise NotFound(f"no copy job {request.params['id']!r} of yours")
        return Reply(200, staging.show(job))

    # -- metadata -------------------------------------------------------------------------

    def key(self, request: Request) -> tuple[str, str, str]:
        owner = self.owner(request.caller)
        collection = metadata.check_key(request.params["collection"], "collection")
        return owner, collection, metadata.check_key(request.params["id"], "id")

    @staticmethod
    def owner(caller: Caller) -> str:
        if not caller.name:
            raise Forbidden("metadata belongs to a user")
        return caller.name

    def put_metadata(self, request: Request) -> Reply:
        owner, collection, entry_id = self.key(request)
        document = metadata.check_document(request.json(), entry_id)
        self.service.quotas.metadata(owner, collection, entry_id, document)
        created = self.store.metadata_put(owner, collection, entry_id, document)
        return Reply(201 if created else 204, {"_id": entry_id} if created else None)

    def get_metadata(self, request: Request) -> Reply:
        owner, collection, entry_id = self.key(request)
        document = self.store.metadata_get(owner, collection, entry_id)
        if document is None:
            raise NotFound(f"no entry {entry_id!r} in {collection!r}")
        return Reply(200, {"_id": entry_id, **document})

    def delete_metadata(self, request: Request) -> Reply:
        owner, collection, entry_id = self.key(request)
        if not self.store.metadata_delete(owner, collection, entry_id):
            raise NotFound(f"no entry {entry_id!r} in {collection!r}")
        return Reply(204)

    def query_metadata(self, request: Request) -> Reply:
        owner = self.owner(request.caller)
        collection = metadata.check_key(request.params["collection"], "collection")
        predicate = metadata.parse_filter(request.query.get("filter"))
        found = [
            {"_id": i, **doc} for i, doc in self.store.metadata_scan(owner, collection) if predicate({"_id": i, **doc})
        ]
        return Reply(200, found)
