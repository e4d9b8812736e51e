"""``/api/v1/files`` and ``/api/v1/avatars``: upload, read, link, delete; avatars.

Uploads come as a raw body (``Content-Type`` is the file's type; ``kind`` and
``name`` in the query) or as ``multipart/form-data`` (the first file part;
its own ``Content-Type`` and file name). Either way the body is streamed
(``sandcat.api.upload_stream``: the routes in ``UPLOAD_ENDPOINTS``) and the
limits are enforced as it arrives; the reply comes only once every byte is
stored.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Final

from quart import Blueprint, Response, request

from sandcat.api.bearer import authenticated
from sandcat.api.downloads import content_disposition, send_upload
from sandcat.api.payload import json_response, read_body
from sandcat.api.upload_stream import multipart_file, upload_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.direct_uploads import DirectUploads
from sandcat.domain.file_links import FileLinks
from sandcat.domain.files import Files
from sandcat.domain.groups import Groups
from sandcat.errors import BadRequest, ClientError
from sandcat.ids import parse_id
from sandcat.store.files import Upload

#: Multipart framing allowed on top of the file itself in Content-Length (a
#: proxy in front must allow the largest upload limit plus this).
MULTIPART_SLACK_BYTES: Final = 64 * 1024
_LIST_LIMIT = 200
#: The routes whose bodies are uploads, streamed past Quart (by endpoint name).
UPLOAD_ENDPOINTS: Final = frozenset({"files.upload", "files.my_avatar", "files.group_avatar"})


def file_json(upload: Upload) -> dict[str, object]:
    return {
        "id": upload.id,
        "kind": upload.kind,
        "content_type": upload.content_type,
        "name": upload.name,
        "size": upload.size,
        "sha256": upload.sha256,
        "width": upload.width,
        "height": upload.height,
        "duration_ms": upload.duration_ms,
        "thumbnail": upload.has_thumb,
        "created_at": upload.created_at,
    }


async def receive_upload(files: Files, owner: str, kind: str) -> Upload:
    """Stream the current request's body into an upload of ``kind``."""
    body = upload_body()
    length = request.content_length
    multipart = request.mimetype == "multipart/form-data"
    slack = MULTIPART_SLACK_BYTES if multipart else 0
    await files.check_room(owner, kind, None if length is None else length - slack)
    idle = files.config.idle_timeout_s
    async with aclosing(body.chunks(idle_timeout_s=idle)) as chunks:
        if not multipart:
            return await files.upload(
                owner,
                kind=kind,
                declared_type=request.headers.get("Content-Type"),
                name=request.args.get("name"),
                length=length,
                chunks=chunks,
            )
        boundary = request.mimetype_params.get("boundary")
        if not boundary or len(boundary) > 70:
            raise ClientError("multipart body without a valid boundary")
        part = await multipart_file(chunks, boundary)
        async with aclosing(part.chunks) as part_chunks:
            return await files.upload(
                owner,
                kind=kind,
                declared_type=part.content_type,
                name=part.filename,
                length=None,
                chunks=part_chunks,
            )


def files_blueprint(
    accounts: Accounts,
    files: Files,
    links: FileLinks,
    direct: DirectUploads,
    groups: Groups,
    *,
    max_body_bytes: int,
) -> Blueprint:
    routes = Blueprint("files", __name__, url_prefix="/api/v1")

    @routes.post("/files")
    async def upload() -> Response:
        principal = await authenticated(accounts)
        kind = files.parse_kind(request.args.get("kind"))
        if kind == "avatar":
            raise BadRequest("kind: upload avatars with PUT /api/v1/users/me/avatar", field="kind")
        done = await receive_upload(files, principal.user, kind)
        return json_response({"file": file_json(done)}, 201)

    @routes.post("/files/direct")
    async def begin_direct() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        ticket = await direct.begin(
            principal.user,
            kind=files.parse_kind(body.optional_text("kind")),
            declared_type=body.text("content_type"),
            name=body.optional_text("name"),
            size=body.integer("size"),
        )
        return json_response(
            {
                "file": file_json(ticket.upload),
                "upload_url": ticket.url,
                "expires_at": ticket.expires_at,
            },
            201,
        )

    @routes.post("/files/<file_id>/complete")
    async def complete_direct(file_id: str) -> Response:
        principal = await authenticated(accounts)
        await read_body(max_bytes=max_body_bytes)
        done = await direct.complete(principal.user, parse_id(file_id, field="id"))
        return json_response({"file": file_json(done)})

    @routes.get("/files")
    async def mine() -> Response:
        principal = await authenticated(accounts)
        uploads = await files.store.mine(principal.user, limit=_LIST_LIMIT)
        return json_response(
            {
                "files": [file_json(upload) for upload in uploads],
                "used_bytes": await files.store.usage(principal.user),
                "quota_bytes": files.config.quota_bytes,
            }
        )

    @routes.get("/files/<file_id>")
    async def info(file_id: str) -> Response:
        principal = await authenticated(accounts)
        upload = await files.readable(principal.user, parse_id(file_id, field="id"))
        return json_response({"file": file_json(upload)})

    @routes.delete("/files/<file_id>")
    async def delete(file_id: str) -> Response:
        principal = await authenticated(accounts)
        await files.delete(principal.user, parse_id(file_id, field="id"))
        return Response(b"", status=204)

    async def _download(file_id: str, variant: str) -> Response:
        file_id = parse_id(file_id, field="id")
        if "sig" in request.args or "expires" in request.args:
            links.verify(
                file_id, variant, request.args.get("expires", ""), request.args.get("sig", "")
            )
            upload = await files.ready(file_id)
        else:
            principal = await authenticated(accounts)
            upload = await files.readable(principal.user, file_id)
        return await send_upload(files, upload, thumbnail=variant == "thumbnail")

    @routes.get("/files/<file_id>/content")
    async def content(file_id: str) -> Response:
        return await _download(file_id, "content")

    @routes.get("/files/<file_id>/thumbnail")
    async def thumbnail(file_id: str) -> Response:
        return await _download(file_id, "thumbnail")

    @routes.post("/files/<file_id>/links")
    async def make_links(file_id: str) -> Response:
        principal = await authenticated(accounts)
        await read_body(max_bytes=max_body_bytes)
        upload = await files.readable(principal.user, parse_id(file_id, field="id"))
        link = links.sign(upload.id, "content")
        reply: dict[str, object] = {"url": link.url, "expires_at": link.expires_at}
        if upload.has_thumb:
            reply["thumbnail_url"] = links.sign(upload.id, "thumbnail").url
        direct = files.direct_url(upload, content_disposition(upload, inline=False))
        if direct is not None:
            reply["direct_url"] = direct
        return json_response(reply)

    @routes.get("/avatars/<file_id>")
    async def avatar(file_id: str) -> Response:
        upload = await files.avatar(parse_id(file_id, field="id"))
        return await send_upload(files, upload, public=True)

    @routes.put("/users/me/avatar")
    async def my_avatar() -> Response:
        principal = await authenticated(accounts)
        done = await receive_upload(files, principal.user, "avatar")
        await files.set_user_avatar(principal.user, done)
        return json_response({"avatar": done.id, "file": file_json(done)})

    @routes.put("/groups/<group_id>/avatar")
    async def group_avatar(group_id: str) -> Response:
        principal = await authenticated(accounts)
        group_id = parse_id(group_id, field="id")
        await files.may_set_group_avatar(group_id, principal.user)
        done = await receive_upload(files, principal.user, "avatar")
        await files.use_avatar(done, groups.set_avatar(principal.user, group_id, done.id))
        return json_response({"avatar": done.id, "file": file_json(done)})

    return routes
