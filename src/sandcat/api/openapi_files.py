"""The files, downloads and avatars part of the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandcat.api.schemas import ID, MS, Schema, obj, ref

FILE_SCHEMAS: dict[str, Schema] = {
    "File": obj(
        ["id", "kind", "content_type", "name", "size", "sha256", "thumbnail", "created_at"],
        id=ID,
        kind={"type": "string", "enum": ["image", "file", "voice", "video", "avatar"]},
        content_type={"type": "string", "description": "checked against the bytes"},
        name={"type": "string", "description": "the client's file name; display only"},
        size={"type": "integer"},
        sha256={"type": "string"},
        width={"type": ["integer", "null"]},
        height={"type": ["integer", "null"]},
        duration_ms={"type": ["integer", "null"], "description": "where cheap to read"},
        thumbnail={"type": "boolean", "description": "GET .../thumbnail serves a JPEG"},
        created_at=MS,
    ),
    "FileLinks": obj(
        ["url", "expires_at"],
        url={"type": "string", "description": "signed path; needs no bearer token"},
        thumbnail_url={"type": "string"},
        direct_url={"type": "string", "description": "presigned storage URL (S3 only)"},
        expires_at=MS,
    ),
    "AvatarSet": obj(["avatar", "file"], avatar=ID, file=ref("File")),
}

_UPLOAD_BODY: Schema = {
    "required": True,
    "description": (
        "the file as the raw body (its Content-Type is the file's type), or "
        "multipart/form-data whose first file part is the file; with a "
        "Content-Length or chunked. The body is streamed and checked as it "
        "arrives (not limited by http.max_body_bytes); the answer comes only "
        "once every byte is stored, and a refused upload (4xx) stores nothing"
    ),
    "content": {
        "*/*": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": obj(["file"], file={"type": "string", "format": "binary"})
        },
    },
}
# OpenAPI 3.1 describes raw bytes by leaving the schema out (a string schema
# makes validators decode the body as UTF-8; found by nox -s fuzz-api).
_BYTES: Schema = {"content": {"*/*": {}}}


def _param(name: str, where: str, schema: Schema, text: str, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": text}


_SIGNED = [
    _param("expires", "query", {"type": "string"}, "signed link: expiry (ms)"),
    _param("sig", "query", {"type": "string"}, "signed link: signature"),
]
_RANGE = _param("Range", "header", {"type": "string"}, "one bytes= range (206, or 416)")


def _upload(op: Callable[..., Schema], op_id: str, summary: str, ok: Schema, **kw: Any) -> Schema:
    operation = op(op_id, summary, ok=(kw.pop("status", 200), ok), errors=(404, 408, 413), **kw)
    operation["requestBody"] = _UPLOAD_BODY
    for code in ("400", "413", "415", "422"):
        operation["responses"][code] = {"$ref": f"#/components/responses/E{code}"}
    return operation


def _download(op: Callable[..., Schema], op_id: str, summary: str, auth: bool) -> Schema:
    # 422: an id that is not an id (found by nox -s fuzz-api).
    errors = (403, 404, 416, 422) if auth else (404, 416, 422)
    operation = op(op_id, summary, ok=(200, None), errors=errors, path_id="id", auth=auth)
    operation["responses"]["200"].update(_BYTES)
    operation["responses"]["206"] = {"description": "the requested range", **_BYTES}
    operation["responses"]["304"] = {"description": "not modified (If-None-Match)"}
    return operation


def file_paths(op: Callable[..., Schema]) -> dict[str, Schema]:
    """Path items for the file routes, built with openapi.py's ``_operation``."""
    upload = _upload(
        op,
        "uploadFile",
        "upload a file; 413 over the kind's limit or the quota, 415 on a type mismatch",
        obj(["file"], file=ref("File")),
        status=201,
    )
    upload["parameters"] = [
        _param(
            "kind",
            "query",
            {"type": "string", "enum": ["image", "file", "voice", "video"]},
            "default file",
        ),
        _param("name", "query", {"type": "string"}, "file name for a raw body"),
    ]
    content = _download(op, "downloadFile", "the bytes (bearer, or a signed link)", auth=True)
    content["parameters"] += [*_SIGNED, _RANGE]
    content["security"] = [{"bearer": []}, {}]
    thumb = _download(op, "downloadThumbnail", "a JPEG thumbnail of an image", auth=True)
    thumb["parameters"] += _SIGNED
    thumb["security"] = [{"bearer": []}, {}]
    avatar = _download(op, "getAvatar", "an avatar (public)", auth=False)
    avatar["parameters"].append(_RANGE)
    group_avatar = _upload(
        op,
        "setGroupAvatar",
        "set a group's avatar (owner or admin); writes the group.updated message, as PATCH",
        ref("AvatarSet"),
    )
    group_avatar["parameters"] = [{"name": "id", "in": "path", "required": True, "schema": ID}]
    group_avatar["responses"]["403"] = {"$ref": "#/components/responses/E403"}
    return {
        "/api/v1/files": {
            "post": upload,
            "get": op(
                "listFiles",
                "your uploads (newest 200) and your quota",
                ok=(
                    200,
                    obj(
                        ["files", "used_bytes", "quota_bytes"],
                        files={"type": "array", "items": ref("File")},
                        used_bytes={"type": "integer"},
                        quota_bytes={"type": "integer"},
                    ),
                ),
            ),
        },
        "/api/v1/files/{id}": {
            "get": op(
                "getFile",
                "metadata of a file you uploaded or that was sent to you",
                ok=(200, obj(["file"], file=ref("File"))),
                errors=(404, 422),
                path_id="id",
            ),
            "delete": op(
                "deleteFile",
                "delete your upload (others' give 404)",
                ok=(204, None),
                errors=(404, 422),
                path_id="id",
            ),
        },
        "/api/v1/files/direct": {
            "post": op(
                "beginDirectUpload",
                "S3 only: reserve an upload and get a presigned PUT URL for its bytes",
                ok=(
                    201,
                    obj(
                        ["file", "upload_url", "expires_at"],
                        file=ref("File"),
                        upload_url={"type": "string"},
                        expires_at=MS,
                    ),
                ),
                body="direct_upload",
                errors=(413,),
            )
        },
        "/api/v1/files/{id}/complete": {
            "post": op(
                "completeDirectUpload",
                "check the bytes PUT to S3 (as an upload is checked) and make the file ready",
                ok=(200, obj(["file"], file=ref("File"))),
                # 400: this server stores files locally (no direct uploads).
                errors=(400, 404, 409, 413, 415, 422),
                path_id="id",
            )
        },
        "/api/v1/files/{id}/content": {"get": content},
        "/api/v1/files/{id}/thumbnail": {"get": thumb},
        "/api/v1/files/{id}/links": {
            "post": op(
                "linkFile",
                "short-lived signed download links",
                ok=(200, ref("FileLinks")),
                errors=(404, 422),
                path_id="id",
            )
        },
        "/api/v1/avatars/{id}": {"get": avatar},
        "/api/v1/users/me/avatar": {
            "put": _upload(op, "setMyAvatar", "upload and set your avatar", ref("AvatarSet"))
        },
        "/api/v1/groups/{id}/avatar": {"put": group_avatar},
    }
