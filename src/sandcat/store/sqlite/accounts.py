"""Users and sessions in SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any

from sandcat.errors import Conflict
from sandcat.store.accounts import Rotation, Session, User
from sandcat.store.sqlite.database import Database

_SESSION_COLUMNS = (
    "id, family, user_id, device, platform, refresh_hash, created_at, expires_at, ip, revoked_at"
)


def _user(row: Any) -> User:
    (id_, username, display_name, password_hash, email, phone, avatar, created, updated,
     disabled, login_at, login_ip) = row  # fmt: skip
    return User(
        id=str(id_),
        username=str(username),
        display_name=str(display_name),
        password_hash=str(password_hash),
        email=None if email is None else str(email),
        phone=None if phone is None else str(phone),
        avatar=str(avatar),
        created_at=int(created),
        updated_at=int(updated),
        disabled=bool(disabled),
        last_login_at=None if login_at is None else int(login_at),
        last_login_ip=None if login_ip is None else str(login_ip),
    )


def _session(row: Any) -> Session:
    id_, family, user, device, platform, refresh_hash, created, expires, ip, _revoked = row
    return Session(
        id=str(id_),
        family=str(family),
        user=str(user),
        device=str(device),
        platform=str(platform),
        refresh_hash=str(refresh_hash),
        created_at=int(created),
        expires_at=int(expires),
        ip=None if ip is None else str(ip),
    )


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


class SqliteAccountStore:
    """``AccountStore`` over a SQLite ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_user(self, user: User) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO users (id, username, username_key, email, phone, password_hash, "
                "display_name, avatar, created_at, updated_at, disabled) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    user.username,
                    user.username.lower(),
                    user.email,
                    user.phone,
                    user.password_hash,
                    user.display_name,
                    user.avatar,
                    user.created_at,
                    user.updated_at,
                    int(user.disabled),
                ),
            )

        try:
            await self._db.write(insert)
        except sqlite3.IntegrityError as exc:
            text = str(exc)
            for column, field in (("username_key", "username"), ("email", "email")):
                if f"users.{column}" in text:
                    raise Conflict(f"{field} is already taken", field=field) from exc
            if "users.phone" in text:
                raise Conflict("phone is already taken", field="phone") from exc
            raise Conflict("user already exists") from exc

    async def get_user(self, user_id: str) -> User | None:
        def select(conn: sqlite3.Connection) -> User | None:
            row = conn.execute(
                "SELECT id, username, display_name, password_hash, email, phone, avatar, "
                "created_at, updated_at, disabled, last_login_at, last_login_ip FROM users WHERE "
                "id = ?",
                (user_id,),
            ).fetchone()
            return None if row is None else _user(row)

        return await self._db.read(select)

    async def find_login(self, login: str) -> User | None:
        def select(conn: sqlite3.Connection) -> User | None:
            row = conn.execute(
                "SELECT id, username, display_name, password_hash, email, phone, avatar, "
                "created_at, updated_at, disabled, last_login_at, last_login_ip FROM users "
                "WHERE username_key = ?1 OR email = ?1 OR phone = ?2 "
                "ORDER BY CASE WHEN username_key = ?1 THEN 0 WHEN email = ?1 THEN 1 ELSE 2 END "
                "LIMIT 1",
                (login.lower(), login),
            ).fetchone()
            return None if row is None else _user(row)

        return await self._db.read(select)

    async def start_session(self, session: Session, *, rehash: str | None = None) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            _insert_session(conn, session)
            conn.execute(
                "UPDATE users SET last_login_at = ?, last_login_ip = ?, "
                "password_hash = COALESCE(?, password_hash) WHERE id = ?",
                (session.created_at, session.ip, rehash, session.user),
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
                "SELECT id, family, user_id, device, platform, refresh_hash, created_at, "
                "expires_at, ip, revoked_at FROM sessions "
                "WHERE refresh_hash = ?",
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

    async def revoke_session(self, user: str, family: str, *, now_ms: int) -> None:
        def revoke(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE sessions SET revoked_at = ? "
                "WHERE user_id = ? AND family = ? AND revoked_at IS NULL",
                (now_ms, user, family),
            )

        await self._db.write(revoke)

    async def is_session_active(self, user: str, family: str) -> bool:
        def check(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM users WHERE id = ?1 AND disabled = 0 AND EXISTS ("
                "SELECT 1 FROM sessions WHERE family = ?2 AND user_id = ?1 AND revoked_at IS NULL)",
                (user, family),
            ).fetchone()
            return row is not None

        return await self._db.read(check)
