"""The files aggregate in PostgreSQL (see ``sandcat.store.files`` for the contract)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandcat.errors import NotFound, Unavailable
from sandcat.store.files import QuotaExceeded, Upload
from sandcat.store.postgres.database import Connection, Database, at, ms, ms_or_none

_COLUMNS = (
    "id, owner, kind, content_type, name, size, sha256, width, height, duration_ms, "
    "has_thumb, state, created_at, referenced_at"
)
_PLACEHOLDERS = ", ".join("%s" for _ in _COLUMNS.split(","))
_VISIBLE = (
    "SELECT 1 FROM uploads u WHERE u.id = %(id)s AND u.state = 'ready' AND "
    "(u.owner = %(user)s OR EXISTS (SELECT 1 FROM attachments a "
    "JOIN conversation_members m ON m.cid = a.cid "
    "WHERE a.file_id = u.id AND m.user_id = %(user)s "
    # only what was sent while the member could read: after it joined (a late
    # joiner with history hidden has from_seq) and, if it left, before
    "AND a.last_seq >= m.from_seq "
    "AND (m.until_seq IS NULL OR a.first_seq <= m.until_seq)))"
)


def _row(row: Sequence[Any]) -> Upload:
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
        has_thumb=thumb,
        state=state,
        created_at=ms(created),
        referenced_at=ms_or_none(ref),
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
        upload.has_thumb,
        upload.state,
        at(upload.created_at),
        None if upload.referenced_at is None else at(upload.referenced_at),
    )


def ready_uploads(conn: Connection, file_ids: Sequence[str]) -> set[str]:
    """Inside a message's transaction: which of ``file_ids`` are ready.

    FOR SHARE: an owner's delete or the janitor waits for this transaction,
    so an upload cannot be condemned between this check and the commit.
    """
    rows = conn.execute(
        "SELECT id FROM uploads WHERE id = ANY(%s) AND state = 'ready' FOR SHARE",
        (sorted(set(file_ids)),),
    )
    return {file_id for (file_id,) in rows}


def record_attachments(conn: Connection, sent: Sequence[tuple[str, str, int]], now_ms: int) -> None:
    """Inside the messages' transaction: each ``(file_id, cid, seq)`` was sent."""
    if not sent:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO attachments (file_id, cid, first_seq, last_seq) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (file_id, cid) DO UPDATE "
            "SET last_seq = GREATEST(attachments.last_seq, EXCLUDED.last_seq)",
            [(file_id, cid, seq, seq) for file_id, cid, seq in sent],
        )
    conn.execute(
        "UPDATE uploads SET referenced_at = %s WHERE id = ANY(%s) AND referenced_at IS NULL",
        (at(now_ms), sorted({file_id for file_id, _, _ in sent})),
    )


class PostgresFileStore:
    """``FileStore`` over a PostgreSQL ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def begin(self, upload: Upload) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                f"INSERT INTO uploads ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", _values(upload)
            )
        )

    async def finish(self, upload: Upload, *, quota_bytes: int) -> Upload:
        def finish(conn: Connection) -> Upload:
            # Serialise one owner's finishes so two cannot both fit the same quota.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"quota:{upload.owner}",))
            row = conn.execute(
                "SELECT COALESCE(SUM(size), 0) FROM uploads "
                "WHERE owner = %s AND state = 'ready' AND id != %s",
                (upload.owner, upload.id),
            ).fetchone()
            assert row is not None
            if row[0] + upload.size > quota_bytes:
                raise QuotaExceeded(upload.id)
            conn.execute(
                "UPDATE uploads SET content_type = %s, size = %s, sha256 = %s, width = %s, "
                "height = %s, duration_ms = %s, has_thumb = %s, state = 'ready' "
                "WHERE id = %s AND state = 'pending'",
                (
                    upload.content_type,
                    upload.size,
                    upload.sha256,
                    upload.width,
                    upload.height,
                    upload.duration_ms,
                    upload.has_thumb,
                    upload.id,
                ),
            )
            found = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE id = %s", (upload.id,)
            ).fetchone()
            if found is None:  # condemned and purged by the janitor meanwhile
                raise Unavailable("the upload was cancelled while it was stored")
            return _row(found)

        return await self._db.write(finish)

    async def get(self, file_id: str) -> Upload | None:
        def get(conn: Connection) -> Upload | None:
            found = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE id = %s", (file_id,)
            ).fetchone()
            return None if found is None else _row(found)

        return await self._db.read(get)

    async def usage(self, owner: str) -> int:
        def usage(conn: Connection) -> int:
            row = conn.execute(
                "SELECT COALESCE(SUM(size), 0) FROM uploads "
                "WHERE owner = %s AND state IN ('pending', 'ready')",
                (owner,),
            ).fetchone()
            assert row is not None
            return int(row[0])

        return await self._db.read(usage)

    async def mine(self, owner: str, *, limit: int) -> list[Upload]:
        def mine(conn: Connection) -> list[Upload]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE owner = %s AND state = 'ready' "
                'ORDER BY created_at DESC, id COLLATE "C" LIMIT %s',
                (owner, limit),
            )
            return [_row(row) for row in rows]

        return await self._db.read(mine)

    async def visible_to(self, file_id: str, user: str) -> bool:
        return await self._db.read(
            lambda conn: (
                conn.execute(_VISIBLE, {"id": file_id, "user": user}).fetchone() is not None
            )
        )

    async def attachable(self, file_ids: list[str], user: str) -> list[Upload]:
        def attachable(conn: Connection) -> list[Upload]:
            found = []
            for file_id in file_ids:
                if conn.execute(_VISIBLE, {"id": file_id, "user": user}).fetchone() is None:
                    continue
                row = conn.execute(f"SELECT {_COLUMNS} FROM uploads WHERE id = %s", (file_id,))
                found.append(_row(row.fetchone()))  # type: ignore[arg-type]
            return found

        return await self._db.read(attachable)

    async def condemn(self, file_id: str, *, owner: str | None) -> Upload | None:
        def condemn(conn: Connection) -> Upload | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE id = %s AND state != 'deleting' FOR UPDATE",
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
        def sweep(conn: Connection) -> list[Upload]:
            # SKIP LOCKED: an upload being sent right now is left for the next sweep.
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE referenced_at IS NULL AND "
                "((state = 'ready' AND created_at < %s) OR "
                "(state = 'pending' AND created_at < %s)) LIMIT %s FOR UPDATE SKIP LOCKED",
                (at(ready_before_ms), at(pending_before_ms), limit),
            ).fetchall()
            uploads = [_row(row) for row in rows]
            _condemn(conn, [upload.id for upload in uploads])
            return uploads

        return await self._db.write(sweep)

    async def condemned(self, *, limit: int) -> list[Upload]:
        def condemned(conn: Connection) -> list[Upload]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE state = 'deleting' LIMIT %s", (limit,)
            )
            return [_row(row) for row in rows]

        return await self._db.read(condemned)

    async def purge(self, file_id: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "DELETE FROM uploads WHERE id = %s AND state = 'deleting'", (file_id,)
            )
        )

    async def set_user_avatar(self, user: str, file_id: str, *, now_ms: int) -> str:
        def set_avatar(conn: Connection) -> str:
            row = conn.execute(
                "SELECT avatar FROM users WHERE id = %s FOR UPDATE", (user,)
            ).fetchone()
            if row is None:
                raise NotFound("no such user")
            _use_avatar(conn, file_id, now_ms)
            conn.execute(
                "UPDATE users SET avatar = %s, updated_at = %s WHERE id = %s",
                (file_id, at(now_ms), user),
            )
            return str(row[0])

        return await self._db.write(set_avatar)

    async def group_role(self, group: str, user: str) -> str | None:
        def role(conn: Connection) -> str | None:
            row = conn.execute(
                "SELECT m.role FROM groups g JOIN group_members m ON m.group_id = g.id "
                "WHERE g.id = %s AND m.user_id = %s AND g.dismissed_at IS NULL",
                (group, user),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(role)

    async def install(self, upload: Upload) -> None:
        updates = ", ".join(
            f"{name.strip()} = excluded.{name.strip()}" for name in _COLUMNS.split(",")[1:]
        )
        await self._db.write(
            lambda conn: conn.execute(
                f"INSERT INTO uploads ({_COLUMNS}) VALUES ({_PLACEHOLDERS}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                _values(upload),
            )
        )


def _use_avatar(conn: Connection, file_id: str, now_ms: int) -> None:
    updated = conn.execute(
        "UPDATE uploads SET referenced_at = COALESCE(referenced_at, %s) "
        "WHERE id = %s AND kind = 'avatar' AND state = 'ready'",
        (at(now_ms), file_id),
    ).rowcount
    if not updated:
        raise NotFound("the avatar upload is gone")


def _condemn(conn: Connection, file_ids: Sequence[str]) -> None:
    if not file_ids:
        return
    ids = list(file_ids)
    conn.execute("UPDATE uploads SET state = 'deleting' WHERE id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM attachments WHERE file_id = ANY(%s)", (ids,))
    conn.execute("UPDATE users SET avatar = '' WHERE avatar = ANY(%s)", (ids,))
    conn.execute("UPDATE groups SET avatar = '' WHERE avatar = ANY(%s)", (ids,))
