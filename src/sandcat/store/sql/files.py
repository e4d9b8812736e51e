"""The files aggregate over either engine (see ``sandcat.store.files`` for the contract).

The message append's file steps stay with each engine's append
(``store.sqlite.attachments``, ``store.postgres.attachments``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandcat.errors import NotFound, Unavailable
from sandcat.store.files import QuotaExceeded, Upload
from sandcat.store.sql._tx import SqlStore, Tx

_COLUMNS = (
    "id, owner, kind, content_type, name, size, sha256, width, height, duration_ms, "
    "has_thumb, state, created_at, referenced_at"
)
_PLACEHOLDERS = ", ".join("?" for _ in _COLUMNS.split(","))
_VISIBLE = (
    "SELECT 1 FROM uploads u WHERE u.id = ? AND u.state = 'ready' AND (u.owner = ? OR EXISTS ("
    "SELECT 1 FROM attachments a JOIN conversation_members m ON m.cid = a.cid "
    "WHERE a.file_id = u.id AND m.user_id = ? "
    # only what was sent while the member could read: after it joined (a late
    # joiner with history hidden has from_seq) and, if it left, before
    "AND a.last_seq >= m.from_seq AND (m.until_seq IS NULL OR a.first_seq <= m.until_seq)))"
)


def _row(tx: Tx, row: Sequence[Any]) -> Upload:
    (id_, owner, kind, ctype, name, size, sha, width, height, duration, thumb, state,
     created, ref) = row  # fmt: skip
    return Upload(
        id=id_,
        owner=owner,
        kind=kind,
        content_type=ctype,
        name=name,
        size=size,
        sha256=sha,
        width=width,
        height=height,
        duration_ms=duration,
        has_thumb=bool(thumb),
        state=state,
        created_at=tx.time_out(created),
        referenced_at=tx.time_or_none(ref),
    )


def _values(tx: Tx, upload: Upload) -> tuple[object, ...]:
    return (
        upload.id,
        upload.owner,
        upload.kind,
        upload.content_type,
        upload.name,
        upload.size,
        upload.sha256,
        upload.width,
        upload.height,
        upload.duration_ms,
        upload.has_thumb,
        upload.state,
        tx.time_in(upload.created_at),
        None if upload.referenced_at is None else tx.time_in(upload.referenced_at),
    )


def _load(tx: Tx, file_id: str) -> Upload | None:
    found = tx.one(f"SELECT {_COLUMNS} FROM uploads WHERE id = ?", file_id)
    return None if found is None else _row(tx, found)


def _visible(tx: Tx, file_id: str, user: str) -> bool:
    return tx.one(_VISIBLE, file_id, user, user) is not None


class SqlFileStore(SqlStore):
    """``FileStore`` over either engine's ``Database``."""

    async def begin(self, upload: Upload) -> None:
        await self._write(
            lambda tx: tx.run(
                f"INSERT INTO uploads ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", *_values(tx, upload)
            )
        )

    async def finish(self, upload: Upload, *, quota_bytes: int) -> Upload:
        def finish(tx: Tx) -> Upload:
            # Serialise one owner's finishes so two cannot both fit the same quota.
            tx.lock(f"quota:{upload.owner}")
            (used,) = tx.one(
                "SELECT COALESCE(SUM(size), 0) FROM uploads "
                "WHERE owner = ? AND state = 'ready' AND id <> ?",
                upload.owner,
                upload.id,
            )
            if used + upload.size > quota_bytes:
                raise QuotaExceeded(upload.id)
            tx.run(
                "UPDATE uploads SET content_type = ?, size = ?, sha256 = ?, width = ?, "
                "height = ?, duration_ms = ?, has_thumb = ?, state = 'ready' "
                "WHERE id = ? AND state = 'pending'",
                upload.content_type,
                upload.size,
                upload.sha256,
                upload.width,
                upload.height,
                upload.duration_ms,
                upload.has_thumb,
                upload.id,
            )
            found = _load(tx, upload.id)
            if found is None:  # condemned and purged by the janitor meanwhile
                raise Unavailable("the upload was cancelled while it was stored")
            return found

        return await self._write(finish)

    async def get(self, file_id: str) -> Upload | None:
        return await self._read(lambda tx: _load(tx, file_id))

    async def usage(self, owner: str) -> int:
        def usage(tx: Tx) -> int:
            (used,) = tx.one(
                "SELECT COALESCE(SUM(size), 0) FROM uploads "
                "WHERE owner = ? AND state IN ('pending', 'ready')",
                owner,
            )
            return int(used)

        return await self._read(usage)

    async def mine(self, owner: str, *, limit: int) -> list[Upload]:
        def mine(tx: Tx) -> list[Upload]:
            rows = tx.all(
                f"SELECT {_COLUMNS} FROM uploads WHERE owner = ? AND state = 'ready' "
                f"ORDER BY created_at DESC, id{tx.dialect.collate} LIMIT ?",
                owner,
                limit,
            )
            return [_row(tx, row) for row in rows]

        return await self._read(mine)

    async def visible_to(self, file_id: str, user: str) -> bool:
        return await self._read(lambda tx: _visible(tx, file_id, user))

    async def attachable(self, file_ids: list[str], user: str) -> list[Upload]:
        def attachable(tx: Tx) -> list[Upload]:
            found = []
            for file_id in file_ids:
                upload = _load(tx, file_id) if _visible(tx, file_id, user) else None
                if upload is not None:
                    found.append(upload)
            return found

        return await self._read(attachable)

    async def condemn(self, file_id: str, *, owner: str | None) -> Upload | None:
        def condemn(tx: Tx) -> Upload | None:
            row = tx.one(
                f"SELECT {_COLUMNS} FROM uploads WHERE id = ? AND state <> 'deleting'"
                + tx.dialect.for_update,
                file_id,
            )
            if row is None:
                return None
            upload = _row(tx, row)
            if owner is not None and upload.owner != owner:
                return None
            _condemn(tx, [upload.id])
            return upload

        return await self._write(condemn)

    async def condemn_unreferenced(
        self, *, ready_before_ms: int, pending_before_ms: int, limit: int
    ) -> list[Upload]:
        def sweep(tx: Tx) -> list[Upload]:
            # SKIP LOCKED: an upload being sent right now is left for the next sweep.
            rows = tx.all(
                f"SELECT {_COLUMNS} FROM uploads WHERE referenced_at IS NULL AND "
                "((state = 'ready' AND created_at < ?) OR (state = 'pending' AND created_at < ?)) "
                f"LIMIT ?{tx.dialect.for_update}{tx.dialect.skip_locked}",
                tx.time_in(ready_before_ms),
                tx.time_in(pending_before_ms),
                limit,
            )
            uploads = [_row(tx, row) for row in rows]
            _condemn(tx, [upload.id for upload in uploads])
            return uploads

        return await self._write(sweep)

    async def condemned(self, *, limit: int) -> list[Upload]:
        def condemned(tx: Tx) -> list[Upload]:
            rows = tx.all(f"SELECT {_COLUMNS} FROM uploads WHERE state = 'deleting' LIMIT ?", limit)
            return [_row(tx, row) for row in rows]

        return await self._read(condemned)

    async def purge(self, file_id: str) -> None:
        await self._write(
            lambda tx: tx.run("DELETE FROM uploads WHERE id = ? AND state = 'deleting'", file_id)
        )

    async def set_user_avatar(self, user: str, file_id: str, *, now_ms: int) -> str:
        def set_avatar(tx: Tx) -> str:
            row = tx.one("SELECT avatar FROM users WHERE id = ?" + tx.dialect.for_update, user)
            if row is None:
                raise NotFound("no such user")
            use_avatar(tx, file_id, now_ms)
            tx.run(
                "UPDATE users SET avatar = ?, updated_at = ? WHERE id = ?",
                file_id,
                tx.time_in(now_ms),
                user,
            )
            return str(row[0])

        return await self._write(set_avatar)

    async def group_role(self, group: str, user: str) -> str | None:
        def role(tx: Tx) -> str | None:
            row = tx.one(
                "SELECT m.role FROM groups g JOIN group_members m ON m.group_id = g.id "
                "WHERE g.id = ? AND m.user_id = ? AND g.dismissed_at IS NULL",
                group,
                user,
            )
            return None if row is None else str(row[0])

        return await self._read(role)

    async def install(self, upload: Upload) -> None:
        updates = ", ".join(
            f"{name.strip()} = excluded.{name.strip()}" for name in _COLUMNS.split(",")[1:]
        )
        await self._write(
            lambda tx: tx.run(
                f"INSERT INTO uploads ({_COLUMNS}) VALUES ({_PLACEHOLDERS}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                *_values(tx, upload),
            )
        )


def use_avatar(tx: Tx, file_id: str, now_ms: int) -> None:
    """Mark the avatar upload ``file_id`` in use (the janitor keeps it); ``NotFound`` if
    it is gone."""
    updated = tx.run(
        "UPDATE uploads SET referenced_at = COALESCE(referenced_at, ?) "
        "WHERE id = ? AND kind = 'avatar' AND state = 'ready'",
        tx.time_in(now_ms),
        file_id,
    )
    if not updated:
        raise NotFound("the avatar upload is gone")


def _condemn(tx: Tx, file_ids: Sequence[str]) -> None:
    if not file_ids:
        return
    ids = tx.array(file_ids)
    tx.run(f"UPDATE uploads SET state = 'deleting' WHERE {tx.among('id')}", ids)
    tx.run(f"DELETE FROM attachments WHERE {tx.among('file_id')}", ids)
    tx.run(f"UPDATE users SET avatar = '' WHERE {tx.among('avatar')}", ids)
    tx.run(f"UPDATE groups SET avatar = '' WHERE {tx.among('avatar')}", ids)
