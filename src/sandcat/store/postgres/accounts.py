"""Users and sessions in PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandcat.errors import Conflict, SandcatError
from sandcat.store.accounts import Rotation, Session, User
from sandcat.store.postgres.database import Connection, Database, at, ms, ms_or_none

_USER_COLUMNS = (
    "id, username, display_name, password_hash, email, phone, avatar, created_at, updated_at, "
    "disabled, last_login_at, last_login_ip"
)
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
    (id_, username, display_name, password_hash, email, phone, avatar, created, updated,
     disabled, login_at, login_ip) = row  # fmt: skip
    return User(
        id=id_,
        username=username,
        display_name=display_name,
        password_hash=password_hash,
        email=email,
        phone=phone,
        avatar=avatar,
        created_at=ms(created),
        updated_at=ms(updated),
        disabled=disabled,
        last_login_at=ms_or_none(login_at),
        last_login_ip=login_ip,
    )


def _session(row: Any) -> Session:
    id_, family, user, device, platform, refresh_hash, created, expires, ip, _revoked = row
    return Session(
        id=id_,
        family=family,
        user=user,
        device=device,
        platform=platform,
        refresh_hash=refresh_hash,
        created_at=ms(created),
        expires_at=ms(expires),
        ip=ip,
    )


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

    async def create_user(self, user: User) -> None:
        def insert(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO users (id, username, username_key, email, phone, password_hash, "
                "display_name, avatar, created_at, updated_at, disabled) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    user.id,
                    user.username,
                    user.username.lower(),
                    user.email,
                    user.phone,
                    user.password_hash,
                    user.display_name,
                    user.avatar,
                    at(user.created_at),
                    at(user.updated_at),
                    user.disabled,
                ),
            )

        await self._db.write(insert, conflicts=_CONFLICTS)

    async def get_user(self, user_id: str) -> User | None:
        def select(conn: Connection) -> User | None:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,)
            ).fetchone()
            return None if row is None else _user(row)

        return await self._db.read(select)

    async def find_login(self, login: str) -> User | None:
        def select(conn: Connection) -> User | None:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users "
                "WHERE username_key = %(key)s OR email = %(key)s OR phone = %(login)s "
                "ORDER BY CASE WHEN username_key = %(key)s THEN 0 "
                "WHEN email = %(key)s THEN 1 ELSE 2 END LIMIT 1",
                {"key": login.lower(), "login": login},
            ).fetchone()
            return None if row is None else _user(row)

        return await self._db.read(select)

    async def start_session(self, session: Session, *, rehash: str | None = None) -> None:
        def insert(conn: Connection) -> None:
            _insert_session(conn, session)
            conn.execute(
                "UPDATE users SET last_login_at = %s, last_login_ip = %s, "
                "password_hash = COALESCE(%s, password_hash) WHERE id = %s",
                (at(session.created_at), session.ip, rehash, session.user),
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

    async def revoke_session(self, user: str, family: str, *, now_ms: int) -> None:
        def revoke(conn: Connection) -> None:
            conn.execute(
                "UPDATE sessions SET revoked_at = %s "
                "WHERE user_id = %s AND family = %s AND revoked_at IS NULL",
                (at(now_ms), user, family),
            )

        await self._db.write(revoke)

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
