"""The OpenAPI 3.1 description of the HTTP API, served at ``/api/v1/openapi.json``.

Built as a plain dict so it stays next to the code it describes; a test
validates it against the OpenAPI 3.1 schema and checks that every route of
the app is in it.
"""

from __future__ import annotations

import copy

from sandcat.api.openapi_admin import ADMIN_SCHEMAS, admin_paths
from sandcat.api.openapi_calls import call_paths
from sandcat.api.openapi_conversations import CONVERSATION_SCHEMAS, conversation_paths
from sandcat.api.openapi_files import FILE_SCHEMAS, file_paths
from sandcat.api.openapi_groups import GROUP_SCHEMAS, group_paths
from sandcat.api.openapi_messages import MESSAGE_SCHEMAS, message_paths
from sandcat.api.people_paths import people_paths
from sandcat.api.schemas import BODIES, ID, SCHEMAS, Schema, obj, ref

_ERRORS = {
    400: "malformed JSON, or not a JSON object",
    401: "missing, invalid or expired bearer token, or revoked session",
    403: "not allowed",
    404: "no such thing (or not visible to you)",
    408: "the upload stalled for longer than files.idle_timeout_s",
    409: "conflicts with the current state",
    413: "request body larger than http.max_body_bytes",
    415: "Content-Type is not application/json (uploads: missing, not allowed, or not the bytes)",
    416: "the Range cannot be satisfied",
    422: "a field is missing or invalid; error.field names it",
    429: "rate limited; retry after error.retry_after_ms",
    500: "unexpected server error",
    503: "unavailable: storage down, overloaded, or not supported here",
}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(
    op_id: str,
    summary: str,
    *,
    ok: tuple[int, Schema | None],
    body: str | None = None,
    errors: tuple[int, ...] = (),
    auth: bool = True,
    path_id: str | None = None,
    query: tuple[Schema, ...] = (),
    body_required: bool = True,
) -> Schema:
    status, schema = ok
    success: Schema = {"description": "success"}
    if schema is not None:
        success.update(_json(schema))
    codes = {*errors, 500, 503}
    if body is not None:
        codes |= {400, 413, 415, 422}
    if auth:
        codes.add(401)
    operation: Schema = {
        "operationId": op_id,
        "summary": summary,
        "responses": {
            str(status): success,
            **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in sorted(codes)},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": body_required, **_json(BODIES[body])}
    operation["security"] = [{"bearer": []}] if auth else []
    parameters = list(query)
    if path_id is not None:
        parameters.insert(0, {"name": path_id, "in": "path", "required": True, "schema": ID})
    if parameters:
        operation["parameters"] = parameters
    return operation


def _wrap(key: str, schema: Schema) -> Schema:
    return obj([key], **{key: schema})


def _metrics_operation() -> Schema:
    operation = _operation(
        "metrics", "server metrics (Prometheus text format)", ok=(200, None), auth=False
    )
    operation["responses"]["200"]["content"] = {
        "text/plain; version=0.0.4": {"schema": {"type": "string"}}
    }
    return operation


def _export_operation() -> Schema:
    operation = _operation(
        "exportMe",
        "your data export, streamed: a zip of JSON (profile, contacts, groups, conversations "
        "with their messages as you see them, inbox, settings) and the files you uploaded "
        "(docs/export.md); one per user per http.export_interval_s (else 429)",
        ok=(200, None),
        errors=(429,),
    )
    operation["responses"]["200"]["content"] = {
        "application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}}
    }
    return operation


def openapi_document() -> Schema:
    """The OpenAPI 3.1 document of every route (a fresh dict on each call)."""
    op = _operation
    paths: dict[str, Schema] = {
        "/healthz": {
            "get": op(
                "health",
                "200 once ready; 503 while starting or draining",
                ok=(200, obj(["status"], status={"type": "string"})),
                auth=False,
            )
        },
        "/metrics": {"get": _metrics_operation()},
        "/api/v1/users/me/export": {"get": _export_operation()},
        "/api/v1/openapi.json": {
            "get": op("openapi", "this document", ok=(200, {"type": "object"}), auth=False)
        },
        "/api/v1/groups": {
            "post": op(
                "createGroup",
                "create a group with friends of yours; opens its conversation",
                ok=(201, _wrap("group", ref("GroupDetail"))),
                body="group",
            ),
            "get": op(
                "listGroups",
                "groups you belong to",
                ok=(200, _wrap("groups", {"type": "array", "items": ref("Group")})),
            ),
        },
        "/api/v1/groups/{id}": {
            "get": op(
                "getGroup",
                "a group you belong to, with its members",
                ok=(200, _wrap("group", ref("GroupDetail"))),
                errors=(404, 422),
                path_id="id",
            )
        },
    }
    paths.update(file_paths(op))
    for path, item in group_paths(op, _wrap).items():
        paths.setdefault(path, {}).update(item)
    paths.update(people_paths(op, _wrap))
    paths.update(call_paths(op))
    paths.update(conversation_paths(op))
    paths.update(message_paths(op))
    paths.update(admin_paths(op, _wrap))
    document: Schema = {
        "openapi": "3.1.0",
        "info": {"title": "Sandcat HTTP API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                **SCHEMAS,
                **FILE_SCHEMAS,
                **GROUP_SCHEMAS,
                **CONVERSATION_SCHEMAS,
                **MESSAGE_SCHEMAS,
                **ADMIN_SCHEMAS,
            },
            "responses": {
                f"E{code}": {"description": text, **_json(ref("Error"))}
                for code, text in _ERRORS.items()
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
    return copy.deepcopy(document)


def operation_ids(document: Schema) -> dict[str, tuple[str, str]]:
    """Every operation of an OpenAPI ``document``: operationId -> (METHOD, path).

    SDKs test their route tables against this (tests/client/test_http_coverage.py),
    so a route added to the document without SDK support fails the suite.
    """
    found: dict[str, tuple[str, str]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            found[str(operation["operationId"])] = (method.upper(), path)
    return found


#: Where the server admin routes live: operators' tools, not the client SDKs'.
ADMIN_PREFIX = "/api/v1/admin/"


def sdk_operation_ids(document: Schema) -> dict[str, tuple[str, str]]:
    """``operation_ids`` without the server admin routes (``ADMIN_PREFIX``): what the
    client SDKs must cover. Administration is ``sandcat admin`` or plain HTTP."""
    return {
        op: (method, path)
        for op, (method, path) in operation_ids(document).items()
        if not path.startswith(ADMIN_PREFIX)
    }
