"""Users, sessions, verification codes and OAuth identities, over either engine."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
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
)
from sandcat.store.sql._tx import SqlStore, Tx

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
#: The profile fields ``update_profile`` writes (each is its column's name).
_PROFILE_FIELDS = frozenset(("display_name", "avatar", "gender", "birthday", "signature",
    "region", "language", "phone", "email", "find_by_email", "find_by_phone",
    "read_receipts"))  # fmt: skip
#: A search hit that is not a prefix match (parameters: key, key, query).
_EXACT = "username_key = ? OR (email = ? AND find_by_email) OR (phone = ? AND find_by_phone)"
_FLAGS = frozenset({"find_by_email", "find_by_phone", "read_receipts"})
_CONFLICTS: dict[str, Callable[[], SandcatError]] = {
    "users(username_key)": lambda: Conflict("username is already taken", field="username"),
    "users(email)": lambda: Conflict("email is already taken", field="email"),
    "users(phone)": lambda: Conflict("phone is already taken", field="phone"),
    "users(id)": lambda: Conflict("user already exists"),
}


def _insert_user(tx: Tx, user: User) -> None:
    tx.run(
        "INSERT INTO users (id, username, username_key, email, phone, password_hash, "
        "display_name, display_key, avatar, created_at, updated_at, disabled) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        user.id,
        user.username,
        user.username.lower(),
        user.email,
        user.phone,
        user.password_hash,
        user.display_name,
        user.display_name.lower(),
        user.avatar,
        tx.time_in(user.created_at),
        tx.time_in(user.updated_at),
        user.disabled,
    )


def _insert_session(tx: Tx, session: Session) -> None:
    tx.run(
        "INSERT INTO sessions (id, family, user_id, device, platform, refresh_hash, created_at, "
        "last_used_at, expires_at, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        session.id,
        session.family,
        session.user,
        session.device,
        session.platform,
        session.refresh_hash,
        tx.time_in(session.created_at),
        tx.time_in(session.created_at),
        tx.time_in(session.expires_at),
        session.ip,
    )


def _user(tx: Tx, row: Sequence[Any]) -> User:
    """A ``User`` from a ``users`` row selected as ``_USER_COLUMNS``."""
    (id_, username, display_name, password_hash, email, phone, avatar, gender, birthday,
     signature, region, language, by_email, by_phone, created, updated, disabled,
     login_at, login_ip, login_device, read_receipts) = row  # fmt: skip
    return User(
        id=id_,
        username=username,
        display_name=display_name,
        password_hash=password_hash,
        email=email,
        phone=phone,
        avatar=avatar,
        gender=gender,
        birthday=birthday,
        signature=signature,
        region=region,
        language=language,
        find_by_email=bool(by_email),
        find_by_phone=bool(by_phone),
        created_at=tx.time_out(created),
        updated_at=tx.time_out(updated),
        disabled=bool(disabled),
        last_login_at=tx.time_or_none(login_at),
        last_login_ip=login_ip,
        last_login_device=login_device,
        read_receipts=bool(read_receipts),
    )


def _session(tx: Tx, row: Sequence[Any]) -> Session:
    """A ``Session`` from a ``sessions`` row selected as ``_SESSION_COLUMNS``."""
    id_, family, user, device, platform, refresh_hash, created, expires, ip, _revoked = row
    return Session(
        id=id_,
        family=family,
        user=user,
        device=device,
        platform=platform,
        refresh_hash=refresh_hash,
        created_at=tx.time_out(created),
        expires_at=tx.time_out(expires),
        ip=ip,
    )


def _select_user(tx: Tx, where: str, *args: object) -> User | None:
    row = tx.one(f"SELECT {_USER_COLUMNS} FROM users WHERE {where}", *args)
    return None if row is None else _user(tx, row)


def _revoke(tx: Tx, user: str, now_ms: int, keep: str | None) -> list[str]:
    rows = tx.all(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL "
        f"AND family {tx.dialect.is_not} ? RETURNING family",
        tx.time_in(now_ms),
        user,
        keep,
    )
    return sorted({str(family) for (family,) in rows})


class SqlAccountStore(SqlStore):
    """``AccountStore`` over either engine's ``Database``."""

    # -- users -------------------------------------------------------------------------

    async def create_user(self, user: User) -> None:
        await self._write(lambda tx: _insert_user(tx, user), conflicts=_CONFLICTS)

    async def get_user(self, user_id: str) -> User | None:
        return await self._read(lambda tx: _select_user(tx, "id = ?", user_id))

    async def find_login(self, login: str) -> User | None:
        key = login.lower()
        return await self._read(
            lambda tx: _select_user(
                tx,
                "username_key = ? OR email = ? OR phone = ? "
                "ORDER BY CASE WHEN username_key = ? THEN 0 WHEN email = ? THEN 1 ELSE 2 END "
                "LIMIT 1",
                key,
                key,
                login,
                key,
                key,
            )
        )

    async def update_profile(
        self, user_id: str, changes: Mapping[str, object], *, now_ms: int
    ) -> User:
        if not _PROFILE_FIELDS.issuperset(changes):
            raise ValueError(f"not profile fields: {sorted(set(changes) - _PROFILE_FIELDS)}")
        columns = list(changes)
        values = [bool(value) if name in _FLAGS else value for name, value in changes.items()]
        if "display_name" in changes:
            columns.append("display_key")
            values.append(str(changes["display_name"]).lower())
        assignments = "".join(f"{column} = ?, " for column in columns)

        def update(tx: Tx) -> User:
            tx.run(
                f"UPDATE users SET {assignments}updated_at = ? WHERE id = ?",
                *values,
                tx.time_in(now_ms),
                user_id,
            )
            user = _select_user(tx, "id = ?", user_id)
            assert user is not None
            return user

        return await self._write(update, conflicts=_CONFLICTS)

    # -- the directory -----------------------------------------------------------------

    async def visible_user(self, viewer: str, user_id: str) -> User | None:
        return await self._read(
            lambda tx: _select_user(
                tx,
                "id = ? AND NOT disabled AND NOT EXISTS "
                "(SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?)",
                user_id,
                user_id,
                viewer,
            )
        )

    async def search(self, viewer: str, query: str, *, limit: int, offset: int) -> list[Found]:
        key = query.lower()

        def select(tx: Tx) -> list[Found]:
            c = tx.dialect.collate
            rows = tx.all(
                f"SELECT {_USER_COLUMNS}, CASE "
                "WHEN username_key = ? THEN 'username' "
                "WHEN email = ? AND find_by_email THEN 'email' "
                "WHEN phone = ? AND find_by_phone THEN 'phone' "
                "ELSE 'prefix' END AS match FROM users "
                "WHERE id <> ? AND NOT disabled AND ("
                f"{_EXACT} "
                f"OR (username_key{c} >= ? AND username_key{c} < ? || ?) "
                f"OR (display_key{c} >= ? AND display_key{c} < ? || ?)) "
                "AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = users.id "
                "AND b.blocked_id = ?) "
                # Exact matches first, then bytewise by username and id.
                f"ORDER BY CASE WHEN {_EXACT} THEN 0 ELSE 1 END, username_key{c}, id{c} "
                "LIMIT ? OFFSET ?",
                key,
                key,
                query,
                viewer,
                key,
                key,
                query,
                key,
                key,
                _TOP,
                key,
                key,
                _TOP,
                viewer,
                key,
                key,
                query,
                limit,
                offset,
            )
            return [Found(_user(tx, row[:-1]), _as_match(row[-1])) for row in rows]

        return await self._read(select)

    # -- sessions ----------------------------------------------------------------------

    async def start_session(self, session: Session, *, rehash: str | None = None) -> None:
        def insert(tx: Tx) -> None:
            _insert_session(tx, session)
            tx.run(
                "UPDATE users SET last_login_at = ?, last_login_ip = ?, last_login_device = ?, "
                "password_hash = COALESCE(?, password_hash) WHERE id = ?",
                tx.time_in(session.created_at),
                session.ip,
                session.device,
                rehash,
                session.user,
            )

        await self._write(insert)

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
        def rotate(tx: Tx) -> Rotation:
            # FOR UPDATE: two concurrent refreshes with one token must not both rotate.
            row = tx.one(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE refresh_hash = ?"
                + tx.dialect.for_update,
                refresh_hash,
            )
            if row is None:
                return Rotation("invalid")
            old = _session(tx, row)
            now = tx.time_in(now_ms)
            if row[-1] is not None:
                # RFC 9700 §4.14.2: a rotated token came back, so one of its two
                # holders is an attacker; end the whole family.
                tx.run(
                    "UPDATE sessions SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                    now,
                    old.family,
                )
                return Rotation("reused", old)
            found = tx.one("SELECT disabled FROM users WHERE id = ?", old.user)
            if old.expires_at <= now_ms or found is None or found[0]:
                return Rotation("invalid")
            tx.run(
                "UPDATE sessions SET revoked_at = ?, last_used_at = ? WHERE id = ?",
                now,
                now,
                old.id,
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
            _insert_session(tx, rotated)
            return Rotation("rotated", rotated)

        return await self._write(rotate)

    async def revoke_session(self, user: str, family: str, *, now_ms: int) -> bool:
        def revoke(tx: Tx) -> bool:
            changed = tx.run(
                "UPDATE sessions SET revoked_at = ? "
                "WHERE user_id = ? AND family = ? AND revoked_at IS NULL",
                tx.time_in(now_ms),
                user,
                family,
            )
            return changed > 0

        return await self._write(revoke)

    async def is_session_active(self, user: str, family: str) -> bool:
        def check(tx: Tx) -> bool:
            row = tx.one(
                "SELECT 1 FROM users WHERE id = ? AND NOT disabled AND EXISTS ("
                "SELECT 1 FROM sessions WHERE family = ? AND user_id = ? AND revoked_at IS NULL)",
                user,
                family,
                user,
            )
            return row is not None

        return await self._read(check)

    async def list_sessions(self, user: str, *, now_ms: int) -> list[SessionInfo]:
        def select(tx: Tx) -> list[SessionInfo]:
            rows = tx.all(
                "SELECT s.family, s.device, s.platform, "
                "(SELECT MIN(created_at) FROM sessions f WHERE f.family = s.family), "
                "s.created_at, s.expires_at, s.ip FROM sessions s "
                "WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? "
                f"ORDER BY s.created_at DESC, s.family{tx.dialect.collate}",
                user,
                tx.time_in(now_ms),
            )
            return [
                SessionInfo(
                    id=family,
                    device=device,
                    platform=platform,
                    created_at=tx.time_out(started),
                    last_used_at=tx.time_out(used),
                    expires_at=tx.time_out(expires),
                    ip=ip,
                )
                for family, device, platform, started, used, expires, ip in rows
            ]

        return await self._read(select)

    # -- credentials -------------------------------------------------------------------

    async def set_password(
        self, user: str, password_hash: str, *, keep: str | None, now_ms: int
    ) -> list[str]:
        def update(tx: Tx) -> list[str]:
            tx.run(
                "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                password_hash,
                tx.time_in(now_ms),
                user,
            )
            return _revoke(tx, user, now_ms, keep)

        return await self._write(update)

    async def revoke_all(self, user: str, *, now_ms: int) -> list[str]:
        return await self._write(lambda tx: _revoke(tx, user, now_ms, None))

    async def disable(self, user: str, *, now_ms: int) -> list[str]:
        def update(tx: Tx) -> list[str]:
            tx.run(
                "UPDATE users SET disabled = TRUE, updated_at = ? WHERE id = ?",
                tx.time_in(now_ms),
                user,
            )
            return _revoke(tx, user, now_ms, None)

        return await self._write(update)

    # -- verification codes ------------------------------------------------------------

    async def put_code(
        self, email: str, purpose: str, code_hash: str, *, expires_at_ms: int, now_ms: int
    ) -> None:
        await self._write(
            lambda tx: tx.run(
                "INSERT INTO verification_codes (email, purpose, code_hash, expires_at, "
                "attempts, created_at) VALUES (?, ?, ?, ?, 0, ?) "
                "ON CONFLICT (email, purpose) DO UPDATE SET code_hash = excluded.code_hash, "
                "expires_at = excluded.expires_at, attempts = 0, created_at = excluded.created_at",
                email,
                purpose,
                code_hash,
                tx.time_in(expires_at_ms),
                tx.time_in(now_ms),
            )
        )

    async def take_code(
        self, email: str, purpose: str, code_hash: str, *, now_ms: int, max_attempts: int
    ) -> bool:
        def take(tx: Tx) -> bool:
            row = tx.one(
                "SELECT code_hash, expires_at, attempts FROM verification_codes "
                "WHERE email = ? AND purpose = ?" + tx.dialect.for_update,
                email,
                purpose,
            )
            if row is None:
                return False
            stored, expires_at, attempts = row
            alive = tx.time_out(expires_at) > now_ms
            ok = hmac.compare_digest(stored, code_hash) and alive
            if ok or not alive or attempts + 1 >= max_attempts:
                # Single use; and a code that was guessed at too often is burnt.
                tx.run(
                    "DELETE FROM verification_codes WHERE email = ? AND purpose = ?",
                    email,
                    purpose,
                )
            else:
                tx.run(
                    "UPDATE verification_codes SET attempts = attempts + 1 "
                    "WHERE email = ? AND purpose = ?",
                    email,
                    purpose,
                )
            return ok

        return await self._write(take)

    async def expire_codes(self, *, now_ms: int) -> int:
        return await self._write(
            lambda tx: tx.run(
                "DELETE FROM verification_codes WHERE expires_at <= ?", tx.time_in(now_ms)
            )
        )

    # -- OAuth identities ---------------------------------------------------------------

    async def put_state(self, state_hash: str, state: OAuthState) -> None:
        def insert(tx: Tx) -> None:
            tx.run("DELETE FROM oauth_states WHERE expires_at <= ?", tx.time_in(state.expires_at))
            tx.run(
                "INSERT INTO oauth_states (state_hash, provider, verifier, device, platform, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                state_hash,
                state.provider,
                state.verifier,
                state.device,
                state.platform,
                tx.time_in(state.expires_at),
            )

        await self._write(insert)

    async def take_state(self, state_hash: str, *, now_ms: int) -> OAuthState | None:
        def take(tx: Tx) -> OAuthState | None:
            row = tx.one(
                "DELETE FROM oauth_states WHERE state_hash = ? "
                "RETURNING provider, verifier, device, platform, expires_at",
                state_hash,
            )
            if row is None or tx.time_out(row[4]) <= now_ms:
                return None
            provider, verifier, device, platform, expires = row
            return OAuthState(
                provider=provider,
                verifier=verifier,
                device=device,
                platform=platform,
                expires_at=tx.time_out(expires),
            )

        return await self._write(take)

    async def find_identity(self, provider: str, subject: str) -> User | None:
        return await self._read(
            lambda tx: _select_user(
                tx,
                "id = (SELECT user_id FROM oauth_identities WHERE provider = ? AND subject = ?)",
                provider,
                subject,
            )
        )

    async def link_identity(
        self, provider: str, subject: str, user: User, *, create: bool, now_ms: int
    ) -> None:
        def link(tx: Tx) -> None:
            if create:
                _insert_user(tx, user)
            tx.run(
                "INSERT INTO oauth_identities (provider, subject, user_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                provider,
                subject,
                user.id,
                tx.time_in(now_ms),
            )

        await self._write(link, conflicts=_CONFLICTS)


def _as_match(value: str) -> Match:
    if value in ("username", "email", "phone"):
        return value  # type: ignore[return-value]
    return "prefix"
