"""Users and sessions in PostgreSQL."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any

from sandcat.errors import Conflict, SandcatError
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
from sandcat.store.postgres.database import Connection, Database, at, ms

_USER_COLUMNS = (
    "id, username, display_name, password_hash, email, phone, avatar, gender, birthday, "
    "signature, region, language, find_by_email, find_by_phone, created_at, updated_at, "
    "disabled, last_login_at, last_login_ip, last_login_device, read_receipts"
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
_SESSION_COLUMNS = (
    "id, family, user_id, device, platform, refresh_hash, created_at, expires_at, ip, revoked_at"
)
_CONFLICTS: dict[str, Callable[[], SandcatError]] = {
    "users_username_unique": lambda: Conflict("username is already taken", field="username"),
    "users_email_unique": lambda: Conflict("email is already taken", field="email"),
    "users_phone_unique": lambda: Conflict("phone is already taken", field="phone"),
    "users_pkey": lambda: Conflict("user already exists"),
}


def _user(row: Any) -> User:
    return user_from_row(row, millis=ms)


def _insert_user(conn: Connection, user: User) -> None:
    conn.execute(
        "INSERT INTO users (id, username, username_key, email, phone, password_hash, "
        "display_name, display_key, avatar, created_at, updated_at, disabled) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
            at(user.created_at),
            at(user.updated_at),
            user.disabled,
        ),
    )


def _select_user(conn: Connection, where: str, params: Any) -> User | None:
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE {where}", params).fetchone()
    return None if row is None else _user(row)


def _revoke(conn: Connection, user: str, now_ms: int, keep: str | None) -> list[str]:
    rows = conn.execute(
        "UPDATE sessions SET revoked_at = %(now)s WHERE user_id = %(user)s "
        "AND revoked_at IS NULL AND family IS DISTINCT FROM %(keep)s RETURNING family",
        {"now": at(now_ms), "user": user, "keep": keep},
    ).fetchall()
    return sorted({str(family) for (family,) in rows})


def _session(row: Any) -> Session:
    return session_from_row(row, millis=ms)


def _insert_session(conn: Connection, session: Session) -> None:
    conn.execute(
        "INSERT INTO sessions (id, family, user_id, device, platform, refresh_hash, created_at, "
        "last_used_at, expires_at, ip) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            session.id,
            session.family,
            session.user,
            session.device,
            session.platform,
            session.refresh_hash,
            at(session.created_at),
            at(session.created_at),
            at(session.expires_at),
            session.ip,
        ),
    )


class PostgresAccountStore:
    """``AccountStore`` over a PostgreSQL ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- users -------------------------------------------------------------------------

    async def create_user(self, user: User) -> None:
        await self._db.write(lambda conn: _insert_user(conn, user), conflicts=_CONFLICTS)

    async def get_user(self, user_id: str) -> User | None:
        return await self._db.read(lambda conn: _select_user(conn, "id = %s", (user_id,)))

    async def find_login(self, login: str) -> User | None:
        def select(conn: Connection) -> User | None:
            return _select_user(
                conn,
                "username_key = %(key)s OR email = %(key)s OR phone = %(login)s "
                "ORDER BY CASE WHEN username_key = %(key)s THEN 0 "
                "WHEN email = %(key)s THEN 1 ELSE 2 END LIMIT 1",
                {"key": login.lower(), "login": login},
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
        # SQLite stores the booleans as integers; here they are booleans.
        values = [
            bool(value) if column.startswith("find_by_") else value
            for column, value in zip(columns, values, strict=True)
        ]
        assignments = "".join(f"{column} = %s, " for column in columns)

        def update(conn: Connection) -> User:
            conn.execute(
                f"UPDATE users SET {assignments}updated_at = %s WHERE id = %s",
                (*values, at(now_ms), user_id),
            )
            user = _select_user(conn, "id = %s", (user_id,))
            assert user is not None
            return user

        return await self._db.write(update, conflicts=_CONFLICTS)

    # -- the directory -----------------------------------------------------------------

    async def visible_user(self, viewer: str, user_id: str) -> User | None:
        def select(conn: Connection) -> User | None:
            return _select_user(
                conn,
                "id = %(user)s AND NOT disabled AND NOT EXISTS "
                "(SELECT 1 FROM blocks WHERE user_id = %(user)s AND blocked_id = %(viewer)s)",
                {"user": user_id, "viewer": viewer},
            )

        return await self._db.read(select)

    async def search(self, viewer: str, query: str, *, limit: int, offset: int) -> list[Found]:
        def select(conn: Connection) -> list[Found]:
            rows = conn.execute(
                f"SELECT {_USER_COLUMNS}, CASE "
                "WHEN username_key = %(key)s THEN 'username' "
                "WHEN email = %(key)s AND find_by_email THEN 'email' "
                "WHEN phone = %(query)s AND find_by_phone THEN 'phone' "
                "ELSE 'prefix' END AS match FROM users "
                "WHERE id <> %(viewer)s AND NOT disabled AND ("
                "username_key = %(key)s OR (email = %(key)s AND find_by_email) "
                "OR (phone = %(query)s AND find_by_phone) "
                'OR (username_key COLLATE "C" >= %(key)s '
                'AND username_key COLLATE "C" < %(key)s || %(top)s) '
                'OR (display_key COLLATE "C" >= %(key)s '
                'AND display_key COLLATE "C" < %(key)s || %(top)s)) '
                "AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = users.id "
                "AND b.blocked_id = %(viewer)s) "
                "ORDER BY (CASE WHEN username_key = %(key)s THEN 0 "
                "WHEN email = %(key)s AND find_by_email THEN 0 "
                "WHEN phone = %(query)s AND find_by_phone THEN 0 ELSE 1 END), "
                'username_key COLLATE "C", id COLLATE "C" LIMIT %(limit)s OFFSET %(offset)s',
                {
                    "key": query.lower(),
                    "query": query,
                    "viewer": viewer,
                    "top": _TOP,
                    "limit": limit,
                    "offset": offset,
                },
            ).fetchall()
            return [Found(_user(row[:-1]), _as_match(row[-1])) for row in rows]

        return await self._db.read(select)

    async def start_session(self, session: Session, *, rehash: str | None = None) -> None:
        def insert(conn: Connection) -> None:
            _insert_session(conn, session)
            conn.execute(
                "UPDATE users SET last_login_at = %s, last_login_ip = %s, last_login_device = %s, "
                "password_hash = COALESCE(%s, password_hash) WHERE id = %s",
                (at(session.created_at), session.ip, session.device, rehash, session.user),
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
        def rotate(conn: Connection) -> Rotation:
            # FOR UPDATE: two concurrent refreshes with one token must not both rotate.
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE refresh_hash = %s FOR UPDATE",
                (refresh_hash,),
            ).fetchone()
            if row is None:
                return Rotation("invalid")
            old = _session(row)
            if row[-1] is not None:
                # RFC 9700 §4.14.2: a rotated token came back, so one of its two
                # holders is an attacker; end the whole family.
                conn.execute(
                    "UPDATE sessions SET revoked_at = %s WHERE family = %s AND revoked_at IS NULL",
                    (at(now_ms), old.family),
                )
                return Rotation("reused", old)
            found = conn.execute("SELECT disabled FROM users WHERE id = %s", (old.user,)).fetchone()
            if old.expires_at <= now_ms or found is None or found[0]:
                return Rotation("invalid")
            conn.execute(
                "UPDATE sessions SET revoked_at = %s, last_used_at = %s WHERE id = %s",
                (at(now_ms), at(now_ms), old.id),
            )
            rotated = Session(
                id=new_id,
                family=old.family,
                user=old.user,
                device=old.device,
                platform=old.platform,
                refresh_hash=new_hash,
                created_at=now_ms,
                expires_at=expires_at_ms,
                ip=ip,
            )
            _insert_session(conn, rotated)
            return Rotation("rotated", rotated)

        return await self._db.write(rotate)

    async def revoke_session(self, user: str, family: str, *, now_ms: int) -> bool:
        def revoke(conn: Connection) -> bool:
            cursor = conn.execute(
                "UPDATE sessions SET revoked_at = %s "
                "WHERE user_id = %s AND family = %s AND revoked_at IS NULL",
                (at(now_ms), user, family),
            )
            return cursor.rowcount > 0

        return await self._db.write(revoke)

    async def is_session_active(self, user: str, family: str) -> bool:
        def check(conn: Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM users WHERE id = %(user)s AND NOT disabled AND EXISTS ("
                "SELECT 1 FROM sessions WHERE family = %(family)s AND user_id = %(user)s "
                "AND revoked_at IS NULL)",
                {"user": user, "family": family},
            ).fetchone()
            return row is not None

        return await self._db.read(check)

    async def list_sessions(self, user: str, *, now_ms: int) -> list[SessionInfo]:
        def select(conn: Connection) -> list[SessionInfo]:
            rows = conn.execute(
                "SELECT s.family, s.device, s.platform, "
                "(SELECT MIN(created_at) FROM sessions f WHERE f.family = s.family), "
                "s.created_at, s.expires_at, s.ip FROM sessions s "
                "WHERE s.user_id = %s AND s.revoked_at IS NULL AND s.expires_at > %s "
                'ORDER BY s.created_at DESC, s.family COLLATE "C"',
                (user, at(now_ms)),
            ).fetchall()
            return [
                SessionInfo(
                    id=family,
                    device=device,
                    platform=platform,
                    created_at=ms(started),
                    last_used_at=ms(used),
                    expires_at=ms(expires),
                    ip=ip,
                )
                for family, device, platform, started, used, expires, ip in rows
            ]

        return await self._db.read(select)

    # -- credentials -------------------------------------------------------------------

    async def set_password(
        self, user: str, password_hash: str, *, keep: str | None, now_ms: int
    ) -> list[str]:
        def update(conn: Connection) -> list[str]:
            conn.execute(
                "UPDATE users SET password_hash = %s, updated_at = %s WHERE id = %s",
                (password_hash, at(now_ms), user),
            )
            return _revoke(conn, user, now_ms, keep)

        return await self._db.write(update)

    async def revoke_all(self, user: str, *, now_ms: int) -> list[str]:
        return await self._db.write(lambda conn: _revoke(conn, user, now_ms, None))

    async def disable(self, user: str, *, now_ms: int) -> list[str]:
        def update(conn: Connection) -> list[str]:
            conn.execute(
                "UPDATE users SET disabled = true, updated_at = %s WHERE id = %s",
                (at(now_ms), user),
            )
            return _revoke(conn, user, now_ms, None)

        return await self._db.write(update)

    # -- verification codes ------------------------------------------------------------

    async def put_code(
        self, email: str, purpose: str, code_hash: str, *, expires_at_ms: int, now_ms: int
    ) -> None:
        def upsert(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO verification_codes (email, purpose, code_hash, expires_at, "
                "attempts, created_at) VALUES (%s, %s, %s, %s, 0, %s) "
                "ON CONFLICT (email, purpose) DO UPDATE SET code_hash = excluded.code_hash, "
                "expires_at = excluded.expires_at, attempts = 0, created_at = excluded.created_at",
                (email, purpose, code_hash, at(expires_at_ms), at(now_ms)),
            )

        await self._db.write(upsert)

    async def take_code(
        self, email: str, purpose: str, code_hash: str, *, now_ms: int, max_attempts: int
    ) -> bool:
        def take(conn: Connection) -> bool:
            row = conn.execute(
                "SELECT code_hash, expires_at, attempts FROM verification_codes "
                "WHERE email = %s AND purpose = %s FOR UPDATE",
                (email, purpose),
            ).fetchone()
            if row is None:
                return False
            stored, expires_at, attempts = row
            alive = ms(expires_at) > now_ms
            ok = hmac.compare_digest(stored, code_hash) and alive
            if ok or not alive or attempts + 1 >= max_attempts:
                # Single use; and a code that was guessed at too often is burnt.
                conn.execute(
                    "DELETE FROM verification_codes WHERE email = %s AND purpose = %s",
                    (email, purpose),
                )
            else:
                conn.execute(
                    "UPDATE verification_codes SET attempts = attempts + 1 "
                    "WHERE email = %s AND purpose = %s",
                    (email, purpose),
                )
            return ok

        return await self._db.write(take)

    async def expire_codes(self, *, now_ms: int) -> int:
        def delete(conn: Connection) -> int:
            return conn.execute(
                "DELETE FROM verification_codes WHERE expires_at <= %s", (at(now_ms),)
            ).rowcount

        return await self._db.write(delete)

    # -- OAuth identities ---------------------------------------------------------------

    async def put_state(self, state_hash: str, state: OAuthState) -> None:
        def insert(conn: Connection) -> None:
            conn.execute("DELETE FROM oauth_states WHERE expires_at <= %s", (at(state.expires_at),))
            conn.execute(
                "INSERT INTO oauth_states (state_hash, provider, verifier, device, platform, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    state_hash,
                    state.provider,
                    state.verifier,
                    state.device,
                    state.platform,
                    at(state.expires_at),
                ),
            )

        await self._db.write(insert)

    async def take_state(self, state_hash: str, *, now_ms: int) -> OAuthState | None:
        def take(conn: Connection) -> OAuthState | None:
            row = conn.execute(
                "DELETE FROM oauth_states WHERE state_hash = %s "
                "RETURNING provider, verifier, device, platform, expires_at",
                (state_hash,),
            ).fetchone()
            if row is None or ms(row[4]) <= now_ms:
                return None
            provider, verifier, device, platform, expires = row
            return OAuthState(
                provider=provider,
                verifier=verifier,
                device=device,
                platform=platform,
                expires_at=ms(expires),
            )

        return await self._db.write(take)

    async def find_identity(self, provider: str, subject: str) -> User | None:
        def select(conn: Connection) -> User | None:
            return _select_user(
                conn,
                "id = (SELECT user_id FROM oauth_identities WHERE provider = %s AND subject = %s)",
                (provider, subject),
            )

        return await self._db.read(select)

    async def link_identity(
        self, provider: str, subject: str, user: User, *, create: bool, now_ms: int
    ) -> None:
        def link(conn: Connection) -> None:
            if create:
                _insert_user(conn, user)
            conn.execute(
                "INSERT INTO oauth_identities (provider, subject, user_id, created_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (provider, subject, user.id, at(now_ms)),
            )

        await self._db.write(link, conflicts=_CONFLICTS)


def _as_match(value: str) -> Match:
    if value in ("username", "email", "phone"):
        return value  # type: ignore[return-value]
    return "prefix"
