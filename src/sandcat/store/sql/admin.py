"""The server-admin role, the audit log and the statistics, over either engine."""

from __future__ import annotations

from sandcat.store.admin import AuditEntry, Stats
from sandcat.store.sql._tx import SqlStore, Tx

_DAY_MS = 86_400_000


def _audit_row(tx: Tx, row: tuple[object, ...]) -> AuditEntry:
    id_, at, actor, action, target, origin, detail = row
    return AuditEntry(
        id=int(id_),  # type: ignore[call-overload]
        at=tx.time_out(at),
        actor=str(actor),
        action=str(action),
        target=str(target),
        origin=str(origin),
        detail=str(detail),
    )


class SqlAdminStore(SqlStore):
    """``AdminStore`` over either engine's ``Database``."""

    async def grant_admin(self, user: str, *, by: str, now_ms: int) -> bool:
        def grant(tx: Tx) -> bool:
            changed = tx.run(
                "INSERT INTO server_admins (user_id, granted_by, granted_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO NOTHING",
                user,
                by,
                tx.time_in(now_ms),
            )
            return changed > 0

        return await self._write(grant)

    async def revoke_admin(self, user: str) -> bool:
        return await self._write(
            lambda tx: tx.run("DELETE FROM server_admins WHERE user_id = ?", user) > 0
        )

    async def is_admin(self, user: str) -> bool:
        def check(tx: Tx) -> bool:
            row = tx.one(
                "SELECT 1 FROM server_admins a JOIN users u ON u.id = a.user_id "
                "WHERE a.user_id = ? AND NOT u.disabled",
                user,
            )
            return row is not None

        return await self._read(check)

    async def admins(self) -> list[str]:
        def select(tx: Tx) -> list[str]:
            rows = tx.all(f"SELECT user_id FROM server_admins ORDER BY user_id{tx.dialect.collate}")
            return [str(user) for (user,) in rows]

        return await self._read(select)

    async def flags(self, user: str) -> tuple[bool, int | None]:
        def select(tx: Tx) -> tuple[bool, int | None]:
            row = tx.one(
                "SELECT EXISTS (SELECT 1 FROM server_admins WHERE user_id = ?), deleted_at "
                "FROM users WHERE id = ?",
                user,
                user,
            )
            return (False, None) if row is None else (bool(row[0]), tx.time_or_none(row[1]))

        return await self._read(select)

    async def set_enabled(self, user: str, *, now_ms: int) -> bool:
        def update(tx: Tx) -> bool:
            changed = tx.run(
                "UPDATE users SET disabled = FALSE, updated_at = ? "
                "WHERE id = ? AND disabled AND deleted_at IS NULL",
                tx.time_in(now_ms),
                user,
            )
            return changed > 0

        return await self._write(update)

    async def erase_user(
        self, user: str, *, display_name: str, avatar: str, password_hash: str, now_ms: int
    ) -> None:
        def erase(tx: Tx) -> None:
            now = tx.time_in(now_ms)
            tx.run(
                "UPDATE users SET email = NULL, phone = NULL, password_hash = ?, "
                "display_name = ?, display_key = ?, avatar = ?, gender = '', birthday = NULL, "
                "signature = '', region = '', language = '', find_by_email = FALSE, "
                "find_by_phone = FALSE, last_login_ip = NULL, last_login_device = NULL, "
                "disabled = TRUE, deleted_at = ?, updated_at = ? WHERE id = ?",
                password_hash,
                display_name,
                display_name.lower(),
                avatar,
                now,
                now,
                user,
            )
            tx.run("DELETE FROM oauth_identities WHERE user_id = ?", user)
            tx.run("DELETE FROM blocks WHERE user_id = ? OR blocked_id = ?", user, user)
            tx.run(
                "UPDATE friend_requests SET status = 'cancelled', updated_at = ? "
                "WHERE status = 'pending' AND (from_user = ? OR to_user = ?)",
                now,
                user,
                user,
            )
            tx.run("DELETE FROM server_admins WHERE user_id = ?", user)

        await self._write(erase)

    async def record(self, entry: AuditEntry) -> None:
        await self._write(
            lambda tx: tx.run(
                "INSERT INTO admin_audit (at, actor, action, target, origin, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                tx.time_in(entry.at),
                entry.actor,
                entry.action,
                entry.target,
                entry.origin,
                entry.detail,
            )
        )

    async def audit(
        self, *, actor: str | None, action: str | None, since_ms: int | None, limit: int
    ) -> list[AuditEntry]:
        def select(tx: Tx) -> list[AuditEntry]:
            where: list[str] = ["TRUE"]
            args: list[object] = []
            if actor is not None:
                where.append("actor = ?")
                args.append(actor)
            if action is not None:
                where.append("action = ?")
                args.append(action)
            if since_ms is not None:
                where.append("at >= ?")
                args.append(tx.time_in(since_ms))
            rows = tx.all(
                "SELECT id, at, actor, action, target, origin, detail FROM admin_audit "
                f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                *args,
                limit,
            )
            return [_audit_row(tx, row) for row in rows]

        return await self._read(select)

    async def stats(self, *, now_ms: int, days: int) -> Stats:
        def count(tx: Tx) -> Stats:
            users, disabled, deleted = tx.one(
                "SELECT COUNT(*), "
                "COALESCE(SUM(CASE WHEN disabled AND deleted_at IS NULL THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN deleted_at IS NOT NULL THEN 1 ELSE 0 END), 0) FROM users"
            )
            (sessions,) = tx.one(
                "SELECT COUNT(DISTINCT family) FROM sessions "
                "WHERE revoked_at IS NULL AND expires_at > ?",
                tx.time_in(now_ms),
            )
            (messages,) = tx.one("SELECT COUNT(*) FROM messages")
            files, size = tx.one(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM uploads "
                "WHERE state = 'ready' AND owner <> ''"
            )
            # One pass over the window, grouped by UTC day.
            first = now_ms // _DAY_MS - days + 1
            day = tx.dialect.epoch_day.format("created_at")
            sent = {
                int(number): int(count)
                for number, count in tx.all(
                    f"SELECT {day} AS d, COUNT(*) FROM messages WHERE created_at >= ? GROUP BY d",
                    tx.time_in(first * _DAY_MS),
                )
            }
            per_day = [((first + n) * _DAY_MS, sent.get(first + n, 0)) for n in range(days)]
            return Stats(
                users=int(users) - int(deleted),
                disabled_users=int(disabled),
                deleted_users=int(deleted),
                active_sessions=int(sessions),
                messages=int(messages),
                files=int(files),
                file_bytes=int(size),
                sends_per_day=per_day,
            )

        return await self._read(count)

    async def user_ids(self, *, after: str, limit: int) -> list[str]:
        def select(tx: Tx) -> list[str]:
            c = tx.dialect.collate
            rows = tx.all(
                f"SELECT id FROM users WHERE deleted_at IS NULL AND id{c} > ? "
                f"ORDER BY id{c} LIMIT ?",
                after,
                limit,
            )
            return [str(user) for (user,) in rows]

        return await self._read(select)
