"""Users, sessions and verification codes in SQLite."""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Mapping
from typing import Any

from sandcat.errors import Conflict
from sandcat.store.accounts import (
    Found,
    Match,
    OAuthState,
    Rotation,
    Session,
    SessionInfo,
    User,
    session_from_row,
    user_from_row,
)
from sandcat.store.sqlite.database import Database

_USER_COLUMNS = (
    "id, username, display_name, password_hash, email, phone, avatar, gender, birthday, "
    "signature, region, language, find_by_email, find_by_phone, created_at, updated_at, "
    "disabled, last_login_at, last_login_ip, last_login_device, read_receipts"
)
_SESSION_COLUMNS = (
    "id, family, user_id, device, platform, refresh_hash, created_at, expires_at, ip, revoked_at"
)
#: Sorts after every character, so ``key >= p AND key < p || _TOP`` is a prefix range.
_TOP = "\U0010ffff"
#: Column names ``update_profile`` writes, keyed by profile field.
_PROFILE_COLUMNS = {
    "display_name": "display_name",
    "avatar": "avatar",
    "gender": "gender",
    "birthday": "birthday",
    "signature": "signature",
    "region": "region",
    "language": "language",
    "phone": "phone",
    "email": "email",
    "find_by_email": "find_by_email",
    "find_by_phone": "find_by_phone",
    "read_receipts": "read_receipts",
}


def _user(row: Any) -> User:
    return user_from_row(row)


def _session(row: Any) -> Session:
    return session_from_row(row)


def _insert_session(conn: sqlite3.Connection, session: Session) -> None:
    conn.execute(
        "INSERT INTO sessions (id, family, user_id, device, platform, refresh_hash, created_at, "
        "last_used_at, expires_at, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session.id,
            session.family,
            session.user,
            session.device,
            session.platform,
            session.refresh_hash,
            session.created_at,
            session.created_at,
            session.expires_at,
            session.ip,
        ),
    )


def _insert_user(conn: sqlite3.Connection, user: User) -> None:
    conn.execute(
        "INSERT INTO users (id, username, username_key, email, phone, password_hash, "
        "display_name, display_key, avatar, created_at, updated_at, disabled) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            user.id,
            user.username,
            user.username.lower(),
            user.email,
            user.phone,
            user.password_hash,
            user.display_name,
            user.display_name.lower(),
            user.avatar,
            user.created_at,
            user.updated_at,
            int(user.disabled),
        ),
    )


def _conflict(exc: sqlite3.IntegrityError) -> Conflict:
    text = str(exc)
    for column, field in (("username_key", "username"), ("email", "email"), ("phone", "phone")):
        if f"users.{column}" in text:
            return Conflict(f"{field} is already taken", field=field)
    return Conflict("user already exists")


def _select_user(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> User | None:
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE {where}", params).fetchone()
    return None if row is None else _user(row)


def _revoke(conn: sqlite3.Connection, user: str, now_ms: int, keep: str | None) -> list[str]:
    rows = conn.execute(
        "UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL "
        "AND family IS NOT ?3 RETURNING family",
        (now_ms, user, keep),
    ).fetchall()
    return sorted({str(family) for (family,) in rows})


class SqliteAccountStore:
    """``AccountStore`` over a SQLite ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- users -------------------------------------------------------------------------

    async def create_user(self, user: User) -> None:
        try:
            await self._db.write(lambda conn: _insert_user(conn, user))
        except sqlite3.IntegrityError as exc:
            raise _conflict(exc) from exc

    async def get_user(self, user_id: str) -> User | None:
        return await self._db.read(lambda conn: _select_user(conn, "id = ?", (user_id,)))

    async def find_login(self, login: str) -> User | None:
        def select(conn: sqlite3.Connection) -> User | None:
            return _select_user(
                conn,
                "username_key = ?1 OR email = ?1 OR phone = ?2 "
                "ORDER BY CASE WHEN username_key = ?1 THEN 0 WHEN email = ?1 THEN 1 ELSE 2 END "
                "LIMIT 1",
                (login.lower(), login),
            )

        return await self._db.read(select)

    async def update_profile(
        self, user_id: str, changes: Mapping[str, object], *, now_ms: int
    ) -> User:
        columns = [_PROFILE_COLUMNS[name] for name in changes]
        values: list[object] = list(changes.values())
        if "display_name" in changes:
            columns.append("display_key")
            values.append(str(changes["display_name"]).lower())
        assignments = "".join(f"{column} = ?, " for column in columns)

        def update(conn: sqlite3.Connection) -> User:
            conn.execute(
                f"UPDATE users SET {assignments}updated_at = ? WHERE id = ?",
                (*values, now_ms, user_id),
            )
            user = _select_user(conn, "id = ?", (user_id,))
            assert user is not None
            return user

        try:
            return await self._db.write(update)
        except sqlite3.IntegrityError as exc:
            raise _conflict(exc) from exc

    # -- the directory -----------------------------------------------------------------

    async def visible_user(self, viewer: str, user_id: str) -> User | None:
        def select(conn: sqlite3.Connection) -> User | None:
            return _select_user(
                conn,
                "id = ?1 AND disabled = 0 AND NOT EXISTS "
                "(SELECT 1 FROM blocks WHERE user_id = ?1 AND blocked_id = ?2)",
                (user_id, viewer),
            )

        return await self._db.read(select)

    async def search(self, viewer: str, query: str, *, limit: int, offset: int) -> list[Found]:
        key = query.lower()

        def select(conn: sqlite3.Connection) -> list[Found]:
            rows = conn.execute(
                f"SELECT {_USER_COLUMNS}, CASE "
                "WHEN username_key = ?1 THEN 'username' "
                "WHEN email = ?1 AND find_by_email THEN 'email' "
                "WHEN phone = ?2 AND find_by_phone THEN 'phone' "
                "ELSE 'prefix' END AS match FROM users "
                "WHERE id != ?3 AND disabled = 0 AND ("
                "username_key = ?1 OR (email = ?1 AND find_by_email) "
                "OR (phone = ?2 AND find_by_phone) "
                "OR (username_key >= ?1 AND username_key < ?1 || ?4) "
                "OR (display_key >= ?1 AND display_key < ?1 || ?4)) "
                "AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = users.id "
                "AND b.blocked_id = ?3) "
                "ORDER BY match = 'prefix', username_key, id LIMIT ?5 OFFSET ?6",
                (key, query, viewer, _TOP, limit, offset),
            ).fetchall()
            return [Found(_user(row[:-1]), _as_match(row[-1])) for row in rows]

        return await self._db.read(select)

    # -- sessions ----------------------------------------------------------------------

    async def start_session(self, session: Session, *, rehash: str | None = None) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            _insert_session(conn, session)
            conn.execute(
                "UPDATE users SET last_login_at = ?, last_login_ip = ?, last_login_device = ?, "
                "password_hash = COALESCE(?, password_hash) WHERE id = ?",
                (session.created_at, session.ip, session.device, rehash, session.user),
            )

        await self._db.write(insert)

    async def rotate_session(
        self,
        refresh_hash: str,
        *,
        new_id: str,
        new_hash: str,
        now_ms: int,
        expires_at_ms: int,
        ip: str | None,
    ) -> Rotation:
        now = now_ms

        def rotate(conn: sqlite3.Connection) -> Rotation:
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE refresh_hash = ?",
                (refresh_hash,),
            ).fetchone()
            if row is None:
                return Rotation("invalid")
            old = _session(row)
            if row[-1] is not None:
                # RFC 9700 §4.14.2: a rotated token came back, so one of its two
                # holders is an attacker; end the whole family.
                conn.execute(
                    "UPDATE sessions SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                    (now, old.family),
                )
                return Rotation("reused", old)
            (disabled,) = conn.execute(
                "SELECT disabled FROM users WHERE id = ?", (old.user,)
            ).fetchone()
            if old.expires_at <= now or disabled:
                return Rotation("invalid")
            conn.execute(
                "UPDATE sessions SET revoked_at = ?, last_used_at = ? WHERE id = ?",
                (now, now, old.id),
            )
            rotated = Session(
                id=new_id,
                family=old.family,
                user=old.user,
                device=old.device,
                platform=old.platform,
                refresh_hash=new_hash,
                created_at=now,
                expires_at=expires_at_ms,
                ip=ip,
            )
            _insert_session(conn, rotated)
            return Rotation("rotated", rotated)

        return await self._db.write(rotate)

    async def revoke_session(self, user: str, family: str, *, now_ms: int) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE sessions SET revoked_at = ? "
                "WHERE user_id = ? AND family = ? AND revoked_at IS NULL",
                (now_ms, user, family),
            )
            return cursor.rowcount > 0

        return await self._db.write(revoke)

    async def is_session_active(self, user: str, family: str) -> bool:
        def check(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM users WHERE id = ?1 AND disabled = 0 AND EXISTS ("
                "SELECT 1 FROM sessions WHERE family = ?2 AND user_id = ?1 AND revoked_at IS NULL)",
                (user, family),
            ).fetchone()
            return row is not None

        return await self._db.read(check)

    async def list_sessions(self, user: str, *, now_ms: int) -> list[SessionInfo]:
        def select(conn: sqlite3.Connection) -> list[SessionInfo]:
            rows = conn.execute(
                "SELECT s.family, s.device, s.platform, "
                "(SELECT MIN(created_at) FROM sessions f WHERE f.family = s.family), "
                "s.created_at, s.expires_at, s.ip FROM sessions s "
                "WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? "
                "ORDER BY s.created_at DESC, s.family",
                (user, now_ms),
            ).fetchall()
            return [
                SessionInfo(
                    id=family,
                    device=device,
                    platform=platform,
                    created_at=started,
                    last_used_at=used,
                    expires_at=expires,
                    ip=ip,
                )
                for family, device, platform, started, used, expires, ip in rows
            ]

        return await self._db.read(select)

    # -- credentials -------------------------------------------------------------------

    async def set_password(
        self, user: str, password_hash: str, *, keep: str | None, now_ms: int
    ) -> list[str]:
        def update(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                (password_hash, now_ms, user),
            )
            return _revoke(conn, user, now_ms, keep)

        return await self._db.write(update)

    async def revoke_all(self, user: str, *, now_ms: int) -> list[str]:
        return await self._db.write(lambda conn: _revoke(conn, user, now_ms, None))

    async def disable(self, user: str, *, now_ms: int) -> list[str]:
        def update(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "UPDATE users SET disabled = 1, updated_at = ? WHERE id = ?", (now_ms, user)
            )
            return _revoke(conn, user, now_ms, None)

        return await self._db.write(update)

    # -- verification codes ------------------------------------------------------------

    async def put_code(
        self, email: str, purpose: str, code_hash: str, *, expires_at_ms: int, now_ms: int
    ) -> None:
        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO verification_codes (email, purpose, code_hash, expires_at, "
                "attempts, created_at) VALUES (?, ?, ?, ?, 0, ?) "
                "ON CONFLICT (email, purpose) DO UPDATE SET code_hash = excluded.code_hash, "
                "expires_at = excluded.expires_at, attempts = 0, created_at = excluded.created_at",
                (email, purpose, code_hash, expires_at_ms, now_ms),
            )

        await self._db.write(upsert)

    async def take_code(
        self, email: str, purpose: str, code_hash: str, *, now_ms: int, max_attempts: int
    ) -> bool:
        def take(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT code_hash, expires_at, attempts FROM verification_codes "
                "WHERE email = ? AND purpose = ?",
                (email, purpose),
            ).fetchone()
            if row is None:
                return False
            stored, expires_at, attempts = row
            ok = hmac.compare_digest(stored, code_hash) and expires_at > now_ms
            if ok or expires_at <= now_ms or attempts + 1 >= max_attempts:
                # Single use; and a code that was guessed at too often is burnt.
                conn.execute(
                    "DELETE FROM verification_codes WHERE email = ? AND purpose = ?",
                    (email, purpose),
                )
            else:
                conn.execute(
                    "UPDATE verification_codes SET attempts = attempts + 1 "
                    "WHERE email = ? AND purpose = ?",
                    (email, purpose),
                )
            return bool(ok)

        return await self._db.write(take)

    async def expire_codes(self, *, now_ms: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM verification_codes WHERE expires_at <= ?", (now_ms,)
            ).rowcount

        return await self._db.write(delete)

    # -- OAuth identities ---------------------------------------------------------------

    async def put_state(self, state_hash: str, state: OAuthState) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM oauth_states WHERE expires_at <= ?", (state.expires_at,))
            conn.execute(
                "INSERT INTO oauth_states (state_hash, provider, verifier, device, platform, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    state_hash,
                    state.provider,
                    state.verifier,
                    state.device,
                    state.platform,
                    state.expires_at,
                ),
            )

        await self._db.write(insert)

    async def take_state(self, state_hash: str, *, now_ms: int) -> OAuthState | None:
        def take(conn: sqlite3.Connection) -> OAuthState | None:
            row = conn.execute(
                "DELETE FROM oauth_states WHERE state_hash = ? "
                "RETURNING provider, verifier, device, platform, expires_at",
                (state_hash,),
            ).fetchone()
            if row is None or row[4] <= now_ms:
                return None
            provider, verifier, device, platform, expires = row
            return OAuthState(
                provider=provider,
                verifier=verifier,
                device=device,
                platform=platform,
                expires_at=expires,
            )

        return await self._db.write(take)

    async def find_identity(self, provider: str, subject: str) -> User | None:
        def select(conn: sqlite3.Connection) -> User | None:
            return _select_user(
                conn,
                "id = (SELECT user_id FROM oauth_identities WHERE provider = ? AND subject = ?)",
                (provider, subject),
            )

        return await self._db.read(select)

    async def link_identity(
        self, provider: str, subject: str, user: User, *, create: bool, now_ms: int
    ) -> None:
        def link(conn: sqlite3.Connection) -> None:
            if create:
                _insert_user(conn, user)
            conn.execute(
                "INSERT INTO oauth_identities (provider, subject, user_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (provider, subject, user.id, now_ms),
            )

        try:
            await self._db.write(link)
        except sqlite3.IntegrityError as exc:
            raise _conflict(exc) from exc


def _as_match(value: str) -> Match:
    if value in ("username", "email", "phone"):
        return value  # type: ignore[return-value]
    return "prefix"
