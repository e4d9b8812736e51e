"""A user's data export: one zip of JSON documents and the files they uploaded.

``GET /api/v1/users/me/export`` and ``sandcat admin export USER`` both stream
``export_zip``: the zip is written as it is read, entry by entry, so memory
stays bounded by one page of messages and one blob chunk whatever the user
holds (a file of 100 MiB passes through in 256 KiB pieces). The layout and
every document's shape are in docs/export.md; each record is what the HTTP API
answers for it (``user_json``, ``message_json``, ...), so a reader of the API
reads the export.

What is in it is what the user can see: the conversations they are a member
of, with the messages PULL/HISTORY would give them (hidden ones left out,
recalled ones as recalled tombstones, nothing before their ``min_seq``), and
other users only as they appear to them (ids, names, group roles: never
another user's email or phone).
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trio

from sandcat.api.conversations import conversation_json
from sandcat.api.files import file_json
from sandcat.api.friends import blocked_json, friend_json, request_json
from sandcat.api.groups import group_json, member_json
from sandcat.api.inbox import notice_json
from sandcat.api.messages import message_json
from sandcat.api.users import user_json
from sandcat.blobs import BlobStore
from sandcat.clock import Clock
from sandcat.errors import NotFound, RateLimited
from sandcat.private_files import private_opener
from sandcat.store.accounts import AccountStore
from sandcat.store.backends import Stores
from sandcat.store.contacts import ContactStore
from sandcat.store.files import FileStore, Upload
from sandcat.store.groups import GroupStore
from sandcat.store.history import HistoryStore
from sandcat.store.inbox import InboxStore
from sandcat.store.messages import MessageStore
from sandcat.store.ratelimit import Limiters, LocalLimiters

#: The ``format`` and ``version`` of manifest.json (docs/export.md).
FORMAT = "sandcat-export"
VERSION = 1
#: Messages read per store query (and held at once).
PAGE_MESSAGES = 200
#: Inbox notices read per store query.
PAGE_NOTICES = 500
#: Uploads listed at most (the quota bounds them long before this).
MAX_FILES = 1_000_000
#: The account's settings (from the private profile), repeated in settings.json.
_ACCOUNT_SETTINGS = ("find_by_email", "find_by_phone", "read_receipts")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportSources:
    """The stores an export reads (the server's, or the CLI's own over the same database)."""

    accounts: AccountStore
    contacts: ContactStore
    groups: GroupStore
    messages: MessageStore
    history: HistoryStore
    inbox: InboxStore
    files: FileStore
    blobs: BlobStore

    @classmethod
    def of(cls, stores: Stores, blobs: BlobStore) -> ExportSources:
        return cls(
            accounts=stores.accounts,
            contacts=stores.contacts,
            groups=stores.groups,
            messages=stores.messages,
            history=stores.history,
            inbox=stores.inbox,
            files=stores.files,
            blobs=blobs,
        )


class Exports:
    """Exports for signed-in users (the HTTP route): at most one per user per
    ``interval_s``, counted when an export starts (shared over instances with Redis)."""

    def __init__(
        self,
        sources: ExportSources,
        *,
        interval_s: float,
        clock: Clock,
        limiters: Limiters | None = None,
    ) -> None:
        self._sources = sources
        self._clock = clock
        self.interval_s = interval_s
        self._limit = (limiters or LocalLimiters(clock)).limiter(
            "export", limit=1, window_s=interval_s
        )

    async def start(self, user_id: str) -> AsyncIterator[bytes]:
        """``user_id``'s export, streamed; ``RateLimited`` if they took one within the
        interval."""
        wait_ms = await self._limit.take(user_id)
        if wait_ms:
            raise RateLimited(
                f"one data export per {self.interval_s:g} s (http.export_interval_s); "
                f"try again in {wait_ms / 1000:.0f} s",
                retry_after_ms=wait_ms,
            )
        return await export_zip(self._sources, user_id, now_ms=self._clock())


async def export_to_file(sources: ExportSources, user_id: str, out: Path, *, now_ms: int) -> int:
    """Write ``user_id``'s export to ``out`` (``sandcat admin export``); the bytes written.
    The zip is written beside it first and renamed into place once whole, so ``out``
    never holds a partial export."""
    pieces = await export_zip(sources, user_id, now_ms=now_ms)
    partial = out.with_name(out.name + ".partial")
    written = 0
    file = await trio.open_file(partial, "xb", opener=private_opener)
    try:
        async with file:
            async for piece in pieces:
                written += await file.write(piece)
        await trio.Path(partial).rename(out)
    finally:
        await trio.Path(partial).unlink(missing_ok=True)
    return written


def conversation_path(cid: str) -> str:
    """Where a conversation's messages are in the zip (``:`` is not portable in names)."""
    return f"conversations/{cid.replace(':', '_')}.json"


def file_path(upload: Upload) -> str:
    """Where an upload's bytes are in the zip: its id, then its name made safe."""
    name = _UNSAFE.sub("_", upload.name).strip("._")[:100] or "file"
    return f"files/{upload.id}/{name}"


class _Sink:
    """What ``zipfile`` writes to: collects bytes until they are taken.

    It has no ``tell``/``seek``, so ``zipfile`` streams (local headers with data
    descriptors) instead of seeking back to patch sizes.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here: ``take`` hands the bytes on."""

    def close(self) -> None:
        """The bytes stay until taken (the last piece after ``ZipFile.close``)."""

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class _Zip:
    def __init__(self) -> None:
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED)
        self.names: list[str] = []
        self._when = time.gmtime()[:6]

    def info(self, name: str, *, stored: bool = False, size: int = 0) -> zipfile.ZipInfo:
        """A new entry's header: DEFLATE for JSON, STORED for files (mostly compressed
        already); ``size`` (when known) lets ``zipfile`` choose zip64 up front."""
        self.names.append(name)
        info = zipfile.ZipInfo(name, date_time=self._when)
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.file_size = size
        info.external_attr = 0o600 << 16
        return info

    def document(self, name: str, value: object) -> bytes:
        with self.zip.open(self.info(name), "w") as out:
            out.write(_json(value))
        return self.sink.take()


async def export_zip(
    sources: ExportSources, user_id: str, *, now_ms: int, device: str = "export"
) -> AsyncIterator[bytes]:
    """The zip of ``user_id``'s data, in pieces. ``NotFound`` before the first piece if
    there is no such user; a store failure later ends the stream (the zip is then
    incomplete: it has no central directory, and every unzip tool says so)."""
    user = await sources.accounts.get_user(user_id)
    if user is None:
        raise NotFound("no such user")
    return _pieces(
        sources, user_id, now_ms=now_ms, device=device, profile=user_json(user, private=True)
    )


async def _pieces(
    sources: ExportSources, user_id: str, *, now_ms: int, device: str, profile: dict[str, object]
) -> AsyncIterator[bytes]:
    archive = _Zip()
    uploads = await sources.files.mine(user_id, limit=MAX_FILES)
    states, _ = await sources.messages.conversations(user_id, since=None)
    yield archive.document(
        "manifest.json",
        {
            "format": FORMAT,
            "version": VERSION,
            "user": user_id,
            "created_at": now_ms,
            "documents": [
                "profile.json",
                "settings.json",
                "contacts.json",
                "groups.json",
                "conversations.json",
                "inbox.json",
                "files.json",
            ],
        },
    )
    yield archive.document("profile.json", {"user": profile})
    yield archive.document(
        "settings.json",
        {
            "account": {
                name: profile[name] for name in ("find_by_email", "find_by_phone", "read_receipts")
            },
            "conversations": [
                {
                    "cid": state.cid,
                    "pinned": state.pinned,
                    "muted": state.muted,
                    "hidden": state.hidden,
                    "cleared_seq": state.cleared_seq,
                }
                for state in states
            ],
        },
    )
    contacts = sources.contacts
    yield archive.document(
        "contacts.json",
        {
            "friends": [
                friend_json(user_id, f) for f in await sources.contacts.list_friends(user_id)
            ],
            "requests": [request_json(r) for r in await contacts.list_requests(user_id)],
            "blocked": [blocked_json(b) for b in await contacts.list_blocks(user_id)],
        },
    )
    groups = []
    for group in await sources.groups.list_groups(user_id):
        view = group_json(group)
        view["members"] = [member_json(m) for m in await sources.groups.list_members(group.id)]
        groups.append(view)
    yield archive.document("groups.json", {"groups": groups})
    yield archive.document(
        "conversations.json",
        {
            "conversations": [
                {
                    "conversation": conversation_json(user_id, state),
                    "path": conversation_path(state.cid),
                }
                for state in states
            ]
        },
    )
    for state in states:
        async for piece in _conversation(archive, sources, user_id, state.cid):
            yield piece
    yield archive.document("inbox.json", {"notices": await _notices(sources, user_id, device)})
    present = [u for u in uploads if await sources.blobs.size(u.key) is not None]
    kept = {u.id for u in present}
    # A ready upload whose bytes are gone (a damaged store) is listed without a path.
    listed = [{**file_json(u), "path": file_path(u) if u.id in kept else None} for u in uploads]
    yield archive.document("files.json", {"files": listed})
    for upload in present:
        async for piece in _file(archive, sources.blobs, upload):
            yield piece
    archive.zip.close()
    yield archive.sink.take()


async def _conversation(
    archive: _Zip, sources: ExportSources, user_id: str, cid: str
) -> AsyncIterator[bytes]:
    """``{"cid": ..., "messages": [...]}``, written a page of messages at a time."""
    # A conversation's size is unknown until written: zip64 headers, whatever it comes to.
    entry = archive.info(conversation_path(cid))
    with archive.zip.open(entry, "w", force_zip64=True) as out:
        out.write(b'{"cid":' + _json(cid) + b',"messages":[')
        after, first = 0, True
        while True:
            page = await sources.history.history(
                user_id, cid, before=None, after=after, limit=PAGE_MESSAGES
            )
            for message in page.messages:
                out.write((b"" if first else b",") + _json(message_json(user_id, message)))
                first = False
            yield archive.sink.take()
            if not page.more or not page.messages:
                break
            after = page.messages[-1].seq
        out.write(b"]}")
    yield archive.sink.take()


async def _notices(sources: ExportSources, user_id: str, device: str) -> list[dict[str, object]]:
    notices: list[dict[str, object]] = []
    after = 0
    while True:
        page = await sources.inbox.pull(user_id, device, after=after, limit=PAGE_NOTICES)
        notices.extend(notice_json(n) for n in page.notices)
        if not page.more or not page.notices:
            return notices
        after = page.notices[-1].nseq


async def _file(archive: _Zip, blobs: BlobStore, upload: Upload) -> AsyncIterator[bytes]:
    reader = await blobs.open(upload.key)
    try:
        with archive.zip.open(
            archive.info(file_path(upload), stored=True, size=upload.size), "w"
        ) as out:
            async for chunk in reader:
                out.write(chunk)
                yield archive.sink.take()
    finally:
        await reader.aclose()
    yield archive.sink.take()
