"""The files aggregate in SQLite (see ``sandcat.store.files`` for the contract)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sandcat.errors import NotFound, Unavailable
from sandcat.store.files import QuotaExceeded, Upload
from sandcat.store.sqlite.database import Database

_COLUMNS = (
    "id, owner, kind, content_type, name, size, sha256, width, height, duration_ms, "
    "has_thumb, state, created_at, referenced_at"
)
_PLACEHOLDERS = ", ".join("?" for _ in _COLUMNS.split(","))


def _row(row: Sequence[object]) -> Upload:
    (
        id_,
        owner,
        kind,
        ctype,
        name,
        size,
        sha,
        width,
        height,
        duration,
        thumb,
        state,
        created,
        ref,
    ) = row
    return Upload(
        id=str(id_),
        owner=str(owner),
        kind=str(kind),
        content_type=str(ctype),
        name=str(name),
        size=int(size),  # type: ignore[call-overload]
        sha256=str(sha),
        width=width,  # type: ignore[arg-type]
        height=height,  # type: ignore[arg-type]
        duration_ms=duration,  # type: ignore[arg-type]
        has_thumb=bool(thumb),
        state=state,  # type: ignore[arg-type]
        created_at=int(created),  # type: ignore[call-overload]
        referenced_at=ref,  # type: ignore[arg-type]
    )


def _values(upload: Upload) -> tuple[object, ...]:
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
        int(upload.has_thumb),
        upload.state,
        upload.created_at,
        upload.referenced_at,
    )


def uploads_ready(conn: sqlite3.Connection, file_ids: Sequence[str]) -> bool:
    """Inside a message's transaction: are all of ``file_ids`` still ready?

    The SEND was checked before it was queued; this catches an upload deleted
    by its owner or the janitor between that check and the commit.
    """
    for file_id in file_ids:
        row = conn.execute("SELECT state FROM uploads WHERE id = ?", (file_id,)).fetchone()
        if row is None or row[0] != "ready":
            return False
    return True


def record_attachments(
    conn: sqlite3.Connection, file_ids: Sequence[str], *, cid: str, seq: int, now_ms: int
) -> None:
    """Inside the message's transaction: ``file_ids`` were sent in ``cid`` at ``seq``."""
    for file_id in file_ids:
        conn.execute(
            "INSERT INTO attachments (file_id, cid, first_seq, last_seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (file_id, cid) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)",
            (file_id, cid, seq, seq),
        )
        conn.execute(
            "UPDATE uploads SET referenced_at = ? WHERE id = ? AND referenced_at IS NULL",
            (now_ms, file_id),
        )


_VISIBLE = (
    "SELECT 1 FROM uploads u WHERE u.id = ? AND u.state = 'ready' AND (u.owner = ? OR EXISTS ("
    "SELECT 1 FROM attachments a JOIN conversation_members m ON m.cid = a.cid "
    "WHERE a.file_id = u.id AND m.user_id = ? "
    # only what was sent while the member could read: after it joined (a late
    # joiner with history hidden has from_seq) and, if it left, before
    "AND a.last_seq >= m.from_seq AND (m.until_seq IS NULL OR a.first_seq <= m.until_seq)))"
)


class SqliteFileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def begin(self, upload: Upload) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                f"INSERT INTO uploads ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", _values(upload)
            )
        )

    async def finish(self, upload: Upload, *, quota_bytes: int) -> Upload:
        def finish(conn: sqlite3.Connection) -> Upload:
            (used,) = conn.execute(
                "SELECT COALESCE(SUM(size), 0) FROM uploads "
                "WHERE owner = ? AND state = 'ready' AND id != ?",
                (upload.owner, upload.id),
            ).fetchone()
            if used + upload.size > quota_bytes:
                raise QuotaExceeded(upload.id)
            conn.execute(
                "UPDATE uploads SET content_type = ?, size = ?, sha256 = ?, width = ?, "
                "height = ?, duration_ms = ?, has_thumb = ?, state = 'ready' "
                "WHERE id = ? AND state = 'pending'",
                (
                    upload.content_type,
                    upload.size,
                    upload.sha256,
                    upload.width,
                    upload.height,
                    upload.duration_ms,
                    int(upload.has_thumb),
                    upload.id,
                ),
            )
            row = conn.execute(f"SELECT {_COLUMNS} FROM uploads WHERE id = ?", (upload.id,))
            found = row.fetchone()
            if found is None:  # condemned and purged by the janitor meanwhile
                raise Unavailable("the upload was cancelled while it was stored")
            return _row(found)

        return await self._db.write(finish)

    async def get(self, file_id: str) -> Upload | None:
        def get(conn: sqlite3.Connection) -> Upload | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM uploads WHERE id = ?", (file_id,))
            found = row.fetchone()
            return None if found is None else _row(found)

        return await self._db.read(get)

    async def usage(self, owner: str) -> int:
        def usage(conn: sqlite3.Connection) -> int:
            (used,) = conn.execute(
                "SELECT COALESCE(SUM(size), 0) FROM uploads "
                "WHERE owner = ? AND state IN ('pending', 'ready')",
                (owner,),
            ).fetchone()
            return int(used)

        return await self._db.read(usage)

    async def mine(self, owner: str, *, limit: int) -> list[Upload]:
        def mine(conn: sqlite3.Connection) -> list[Upload]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE owner = ? AND state = 'ready' "
                "ORDER BY created_at DESC, id LIMIT ?",
                (owner, limit),
            )
            return [_row(row) for row in rows]

        return await self._db.read(mine)

    async def visible_to(self, file_id: str, user: str) -> bool:
        return await self._db.read(
            lambda conn: conn.execute(_VISIBLE, (file_id, user, user)).fetchone() is not None
        )

    async def attachable(self, file_ids: list[str], user: str) -> list[Upload]:
        def attachable(conn: sqlite3.Connection) -> list[Upload]:
            found = []
            for file_id in file_ids:
                if conn.execute(_VISIBLE, (file_id, user, user)).fetchone() is None:
                    continue
                row = conn.execute(f"SELECT {_COLUMNS} FROM uploads WHERE id = ?", (file_id,))
                found.append(_row(row.fetchone()))
            return found

        return await self._db.read(attachable)

    async def condemn(self, file_id: str, *, owner: str | None) -> Upload | None:
        def condemn(conn: sqlite3.Connection) -> Upload | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE id = ? AND state != 'deleting'",
                (file_id,),
            ).fetchone()
            if row is None:
                return None
            upload = _row(row)
            if owner is not None and upload.owner != owner:
                return None
            _condemn(conn, [upload.id])
            return upload

        return await self._db.write(condemn)

    async def condemn_unreferenced(
        self, *, ready_before_ms: int, pending_before_ms: int, limit: int
    ) -> list[Upload]:
        def sweep(conn: sqlite3.Connection) -> list[Upload]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE referenced_at IS NULL AND "
                "((state = 'ready' AND created_at < ?) OR (state = 'pending' AND created_at < ?)) "
                "LIMIT ?",
                (ready_before_ms, pending_before_ms, limit),
            ).fetchall()
            uploads = [_row(row) for row in rows]
            _condemn(conn, [upload.id for upload in uploads])
            return uploads

        return await self._db.write(sweep)

    async def condemned(self, *, limit: int) -> list[Upload]:
        def condemned(conn: sqlite3.Connection) -> list[Upload]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE state = 'deleting' LIMIT ?", (limit,)
            )
            return [_row(row) for row in rows]

        return await self._db.read(condemned)

    async def purge(self, file_id: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "DELETE FROM uploads WHERE id = ? AND state = 'deleting'", (file_id,)
            )
        )

    async def set_user_avatar(self, user: str, file_id: str, *, now_ms: int) -> str:
        def set_avatar(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT avatar FROM users WHERE id = ?", (user,)).fetchone()
            if row is None:
                raise NotFound("no such user")
            _use_avatar(conn, file_id, now_ms)
            conn.execute(
                "UPDATE users SET avatar = ?, updated_at = ? WHERE id = ?", (file_id, now_ms, user)
            )
            return str(row[0])

        return await self._db.write(set_avatar)

    async def group_role(self, group: str, user: str) -> str | None:
        def role(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT m.role FROM groups g JOIN group_members m ON m.group_id = g.id "
                "WHERE g.id = ? AND m.user_id = ? AND g.dismissed_at IS NULL",
                (group, user),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(role)

    async def install(self, upload: Upload) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                f"INSERT OR REPLACE INTO uploads ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                _values(upload),
            )
        )


def _use_avatar(conn: sqlite3.Connection, file_id: str, now_ms: int) -> None:
    updated = conn.execute(
        "UPDATE uploads SET referenced_at = COALESCE(referenced_at, ?) "
        "WHERE id = ? AND kind = 'avatar' AND state = 'ready'",
        (now_ms, file_id),
    ).rowcount
    if not updated:
        raise NotFound("the avatar upload is gone")


def _condemn(conn: sqlite3.Connection, file_ids: Sequence[str]) -> None:
    for file_id in file_ids:
        conn.execute("UPDATE uploads SET state = 'deleting' WHERE id = ?", (file_id,))
        conn.execute("DELETE FROM attachments WHERE file_id = ?", (file_id,))
        conn.execute("UPDATE users SET avatar = '' WHERE avatar = ?", (file_id,))
        conn.execute("UPDATE groups SET avatar = '' WHERE avatar = ?", (file_id,))
