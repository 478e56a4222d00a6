"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from davgate import __version__

__all__ = ["document"]

ERROR = {"$ref": "#/components/schemas/Error"}
TEXT, INTEGER, NUMBER, BOOLEAN = ({"type": t} for t in ("string", "integer", "number", "boolean"))
ANY_OBJECT = {"type": "object", "additionalProperties": True}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None, *, strict: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }
    if strict:
        schema["additionalProperties"] = False
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def reply(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Any]:
    reasons = {400: "bad JSON, an unknown field, a wrong type or value", 401: "no token, or a refused one",
               403: "not allowed to this caller", 404: "not found", 409: "exists already", 413: "body too large",
               502: "a storage adaptor failed", 507: "over one of the caller's quotas (api.quota_*)"}  # fmt: skip
    return {str(s): reply(reasons[s], ERROR) for s in statuses}


def call(summary: str, ok: dict[str, Any], *failures: int, body: dict[str, Any] | None = None,
         params: list[dict[str, Any]] | None = None, public: bool = False) -> dict[str, Any]:  # fmt: skip
    operation: dict[str, Any] = {"summary": summary, "responses": {**ok, **errors(*failures)}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        operation["parameters"] = params
    if public:
        operation["security"] = []
    return operation


def param(name: str, where: str = "path", description: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": TEXT, "description": description}


SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": TEXT, "detail": TEXT}),
    "User": obj({"email": TEXT, "name": TEXT}),
    "Token": obj({"token": TEXT, "email": TEXT, "expires": INTEGER}),
    "Adaptor": obj({"name": TEXT, "type": {"enum": ["native", "sshfs", "s3"]}}, {
        "expose": TEXT, "caches": {"type": "array"}, "volume": ANY_OBJECT, "user": TEXT, "host": TEXT, "port": INTEGER,
        "path": TEXT, "password": {"type": "string", "writeOnly": True}, "endpoint": TEXT, "bucket": TEXT,
        "access_key": TEXT, "secret_key": {"type": "string", "writeOnly": True}, "region": TEXT, "prefix": TEXT,
        "create_bucket": BOOLEAN}),
    "Logic": obj({"name": TEXT, "type": {"enum": ["webdav", "webdav-jwt", "query"]}}, {
        "user": TEXT, "pass": {"type": "string", "writeOnly": True}, "users": ANY_OBJECT}),
    "Infrastructure": obj({"name": TEXT, "storageAdaptorContainers": {"type": "array", "items": ref("Adaptor")}},
                          {"namespace": TEXT, "location": TEXT, "logicContainers": {"type": "array", "items": ref("Logic")}}),
    "Endpoint": obj({"type": TEXT}, {"name": TEXT, "infrastructure": TEXT, "url": TEXT, "host": TEXT,
                                     "port": INTEGER, "header": TEXT}, strict=False),
    "File": obj({"filename": TEXT, "basename": TEXT, "lastmod": TEXT, "size": INTEGER, "type": TEXT, "mime": TEXT,
                 "location": ANY_OBJECT}),
    "CopyRequest": obj({"from": TEXT, "to": TEXT}, {"id": TEXT, "webhook": TEXT}),
    "CopyJob": obj({"id": TEXT, "state": {"enum": ["queued", "running", "done", "failed"]}, "from": TEXT, "to": TEXT,
                    "bytes": INTEGER}, {"total": INTEGER, "error": TEXT, "checksum": TEXT}, strict=False),
}  # fmt: skip


def paths() -> dict[str, Any]:
    infrastructure, collection, entry = param("name"), param("collection"), param("id")
    scope = param("infrastructure", "query", "only this infrastructure")
    return {
        "/openapi.json": {"get": call("This document", {"200": reply("OpenAPI 3.1")}, public=True)},
        "/user": {
            "put": call("Register a user (admin token); returns their token",
                        {"201": reply("registered", ref("Token")), "200": reply("renamed", ref("Token"))},
                        400, 401, 403, body=ref("User")),
            "get": call("Registered users (admin token)", {"200": reply("users", {"type": "array"})}, 401, 403),
        },
        "/user/{email}": {"delete": call("Forget a user (admin token)", {"204": reply("removed")}, 401, 403, 404,
                                         params=[param("email")])},
        "/infrastructure": {
            "get": call("The endpoints of the caller's infrastructures",
                        {"200": reply("endpoints", {"type": "array", "items": ref("Endpoint")})}, 401),
            "post": call("Create an infrastructure: /<name>/ with its adaptors and access methods, at once",
                         {"201": reply("created", ANY_OBJECT)}, 400, 401, 409, 413, 502, 507, body=ref("Infrastructure")),
            "delete": call("Remove any infrastructure by its exact stored name, even one the name rule refuses "
                           "(admin token)", {"204": reply("removed")}, 400, 401, 403, 404,
                           params=[param("name", "query"), param("purge", "query")]),
        },
        "/infrastructure/{name}": {
            "get": call("One infrastructure, without secrets", {"200": reply("it", ANY_OBJECT)}, 401, 403, 404,
                        params=[infrastructure]),
            "delete": call("Remove an infrastructure (?purge=true also deletes native volumes)",
                           {"204": reply("removed")}, 401, 403, 404, params=[infrastructure, param("purge", "query")]),
        },
        "/list": {"get": call("Every indexed file, by base name", {"200": reply("files", ANY_OBJECT)}, 401, 404,
                              params=[scope])},
        "/find/{name}": {"get": call("Where the files of this base name are",
                                     {"200": reply("files", {"type": "array", "items": ref("File")})}, 401, 404,
                                     params=[param("name"), scope])},
        "/copy": {
            "post": call("Queue copies between adaptors", {"202": reply("queued", {"type": "array"})}, 400, 401, 409, 507,
                         body={"type": "array", "items": ref("CopyRequest")}),
            "get": call("The caller's copy jobs", {"200": reply("jobs", {"type": "array", "items": ref("CopyJob")})}, 401),
        },
        "/copy/{id}": {"get": call("A copy job's state and progress", {"200": reply("job", ref("CopyJob"))}, 401, 404,
                                   params=[entry])},
        "/metadata/{collection}": {"get": call("Entries matching ?filter=<json> (MongoDB-style)",
                                               {"200": reply("entries", {"type": "array"})}, 400, 401,
                                               params=[collection, param("filter", "query")])},
        "/metadata/{collection}/{id}": {
            "put": call("Create or replace an entry", {"201": reply("created"), "204": reply("replaced")}, 400, 401,
                        507, body=ANY_OBJECT, params=[collection, entry]),
            "get": call("One entry, with its _id", {"200": reply("entry", ANY_OBJECT)}, 401, 404, params=[collection, entry]),
            "delete": call("Remove an entry", {"204": reply("removed")}, 401, 404, params=[collection, entry]),
        },
    }  # fmt: skip


def document(base: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "davgate management API", "version": __version__,
                 "description": "Micro-infrastructures, tokens, query, staging and metadata (the LOBCDER API)."},
        "servers": [{"url": f"{base}/api/v1"}],
        "security": [{"accessToken": []}],
        "components": {
            "securitySchemes": {"accessToken": {"type": "apiKey", "in": "header", "name": "x-access-token"}},
            "schemas": SCHEMAS,
        },
        "paths": paths(),
    }  # fmt: skip
