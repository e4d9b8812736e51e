"""Server administration: the use cases behind ``sandcat admin`` and ``/api/v1/admin/``.

Both front ends call the same methods with an ``Actor``: who acts (a server
admin's user id, or ``cli:<os user>`` on the command line) and from where (the
client address after the trusted-proxy rule, or ``cli``). Every action that
changes something is written to the audit log (``AdminStore.record``) and
logged at INFO, never with a password.

Ending sessions (disable, set password, revoke sessions, delete) goes through
the revocation log every server polls (``sandcat.domain.revocations``: Redis in
a cluster, the database's ``revocation_log`` otherwise), so the user's sockets
close with 4007 on every running instance within a poll interval, whichever
process made the change. The server admin role is granted only here, by
``grant_admin``, which only the command line calls.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sandcat.clock import Clock
from sandcat.domain._text import bounded, display_text
from sandcat.domain.accounts import session_key
from sandcat.domain.avatars import default_avatar
from sandcat.domain.census import Connections
from sandcat.domain.codes import normalize_email
from sandcat.domain.contacts import Contacts
from sandcat.domain.groups import MAX_PAGE, Groups
from sandcat.domain.notices import Notifier
from sandcat.domain.passwords import PasswordHasher, check_password_policy
from sandcat.errors import BadRequest, Conflict, NotFound
from sandcat.ids import is_id, new_id, parse_id
from sandcat.store.accounts import AccountStore, SessionInfo, User
from sandcat.store.admin import AdminStore, AuditEntry, Stats
from sandcat.store.cache import Cache
from sandcat.store.inbox import InboxStore, NewNotice
from sandcat.store.revocations import Revocations

log = logging.getLogger("sandcat.admin")

_USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.")
#: Users a broadcast writes to per transaction.
_BROADCAST_BATCH = 500
MAX_AUDIT = 1000
#: What a deleted account's profile shows in place of its name.
DELETED_NAME = "Deleted user"
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an admin action, and from where."""

    id: str
    origin: str


@dataclass(frozen=True, slots=True)
class UserView:
    """An account as an admin sees it."""

    user: User
    admin: bool
    deleted_at: int | None

    def as_dict(self) -> dict[str, object]:
        user = self.user
        return {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "email": user.email,
            "phone": user.phone,
            "created_at": user.created_at,
            "last_login_at": user.last_login_at,
            "last_login_ip": user.last_login_ip,
            "disabled": user.disabled,
            "deleted": self.deleted_at is not None,
            "admin": self.admin,
        }


@dataclass(frozen=True, slots=True)
class Overview:
    stats: Stats
    #: Authenticated WebSocket connections, of the cluster or of one instance; None: unknown.
    connections: Connections | None


def session_dict(session: SessionInfo) -> dict[str, object]:
    return {
        "id": session.id,
        "device": session.device,
        "platform": session.platform,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "expires_at": session.expires_at,
        "ip": session.ip,
    }


def audit_dict(entry: AuditEntry) -> dict[str, object]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "origin": entry.origin,
        "detail": entry.detail,
    }


def stats_dict(overview: Overview) -> dict[str, object]:
    stats = overview.stats
    connections = overview.connections
    return {
        "users": stats.users,
        "disabled_users": stats.disabled_users,
        "deleted_users": stats.deleted_users,
        "active_sessions": stats.active_sessions,
        "connections": None if connections is None else connections.count,
        # "cluster": every running instance's; "instance": one instance's; "unknown".
        "connections_scope": "unknown" if connections is None else connections.scope,
        "messages": stats.messages,
        "files": stats.files,
        "file_bytes": stats.file_bytes,
        "sends_per_day": [
            {"day": datetime.fromtimestamp(day / 1000, UTC).date().isoformat(), "messages": n}
            for day, n in stats.sends_per_day
        ],
    }


class Admin:
    """The admin use cases over the account, admin, group and inbox stores."""

    def __init__(
        self,
        *,
        accounts: AccountStore,
        store: AdminStore,
        groups: Groups,
        contacts: Contacts,
        inbox: InboxStore,
        passwords: PasswordHasher,
        clock: Clock,
        revocations: Revocations | None,
        closer: Callable[[str, str | None], None] | None = None,
        notifier: Notifier | None = None,
        connections: Callable[[], Awaitable[Connections | None]] | None = None,
        cache: Cache | None = None,
    ) -> None:
        self._accounts = accounts
        self._store = store
        self._groups = groups
        self._contacts = contacts
        self._inbox = inbox
        self._passwords = passwords
        self._clock = clock
        self._revocations = revocations
        #: Closes a user's (or one session's) sockets in this process at once.
        self._closer = closer
        self._notifier = notifier
        self._connections = connections
        #: The sessions recently found live (``Accounts.authenticate``): ended ones leave it.
        self._cache = cache

    # -- reading -------------------------------------------------------------------------

    async def is_admin(self, user: str) -> bool:
        return await self._store.is_admin(user)

    async def find(self, ref: str) -> UserView:
        """The account ``ref`` names: an id, a username (any case), an email or a phone."""
        matches = await self.lookup(ref)
        if not matches:
            raise NotFound(f"no user {ref!r}")
        return matches[0]

    async def lookup(self, query: str) -> list[UserView]:
        """Accounts whose id, username, email or phone is ``query`` (id matches first)."""
        query = query.strip()
        if not 1 <= len(query) <= 254:
            raise BadRequest("query: must be 1-254 characters", field="query")
        found: list[User] = []
        if is_id(query):
            user = await self._accounts.get_user(query)
            if user is not None:
                found.append(user)
        other = await self._accounts.find_login(query)
        if other is not None and other.id not in {user.id for user in found}:
            found.append(other)
        return [await self._view(user) for user in found]

    async def export_of(self, actor: Actor, ref: str) -> UserView:
        """The account ``ref`` names, for a data export of it (audited as ``export``)."""
        view = await self.find(ref)
        await self._done(actor, "export", view.user.id, "")
        return view

    async def _view(self, user: User) -> UserView:
        admin, deleted_at = await self._store.flags(user.id)
        return UserView(user, admin, deleted_at)

    async def sessions(self, ref: str) -> tuple[UserView, list[SessionInfo]]:
        view = await self.find(ref)
        return view, await self._accounts.list_sessions(view.user.id, now_ms=self._clock())

    async def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        if not 1 <= limit <= MAX_AUDIT:
            raise BadRequest(f"limit: must be 1-{MAX_AUDIT}", field="limit")
        if since_ms is not None and since_ms < 0:
            raise BadRequest("since: must be a time after 1970", field="since")
        return await self._store.audit(actor=actor, action=action, since_ms=since_ms, limit=limit)

    async def stats(self, *, days: int = 7) -> Overview:
        if not 1 <= days <= MAX_DAYS:
            raise BadRequest(f"days: must be 1-{MAX_DAYS}", field="days")
        stats = await self._store.stats(now_ms=self._clock(), days=days)
        connections = None if self._connections is None else await self._connections()
        return Overview(stats, connections)

    # -- changing --------------------------------------------------------------------------

    async def create_user(
        self,
        actor: Actor,
        *,
        username: str,
        password: str,
        email: str | None = None,
        email_verified: bool = False,
        display_name: str | None = None,
    ) -> UserView:
        """Create an account without the public register route (no rate limit, no code).

        A verified ``email`` is stored as the account's; an unverified one is not
        stored (the user adds it with the emailed code, as after registering).
        """
        typed = username
        username = username.lower()
        if not 3 <= len(username) <= 32 or not set(username) <= _USERNAME_CHARS:
            raise BadRequest("username: must be 3-32 of a-z, 0-9, '_' and '.'", field="username")
        check_password_policy(password, username=username)
        if email is not None:
            email = normalize_email(email)
        name = display_text(
            typed if display_name is None else display_name, field="display_name", low=1, high=64
        )
        now = self._clock()
        user_id = new_id()
        user = User(
            id=user_id,
            username=username,
            display_name=name,
            password_hash=await self._passwords.hash(password),
            email=email if email_verified else None,
            avatar=default_avatar(user_id),
            created_at=now,
            updated_at=now,
        )
        await self._accounts.create_user(user)
        detail = "" if email is None else f"email {'verified' if email_verified else 'unverified'}"
        await self._done(actor, "create-user", user_id, detail)
        return UserView(user, False, None)

    async def set_password(self, actor: Actor, ref: str, password: str) -> list[str]:
        """Set a new password; every session of the user ends (returned)."""
        user = await self._live(ref)
        check_password_policy(password, username=user.username)
        ended = await self._accounts.set_password(
            user.id, await self._passwords.hash(password), keep=None, now_ms=self._clock()
        )
        await self._end(user.id, None, ended)
        await self._done(actor, "set-password", user.id, f"{len(ended)} sessions ended")
        return ended

    async def disable(self, actor: Actor, ref: str) -> list[str]:
        """Disable the account: no login or refresh, every session ends, every socket
        closes with 4007 on every instance. The ended sessions."""
        user = await self._live(ref)
        ended = await self._accounts.disable(user.id, now_ms=self._clock())
        await self._end(user.id, None, ended)
        await self._done(actor, "disable", user.id, f"{len(ended)} sessions ended")
        return ended

    async def enable(self, actor: Actor, ref: str) -> bool:
        """Undo ``disable`` (the user logs in again); False if it was not disabled."""
        user = await self._live(ref)
        changed = await self._store.set_enabled(user.id, now_ms=self._clock())
        await self._done(actor, "enable", user.id, "" if changed else "was not disabled")
        return changed

    async def revoke_sessions(self, actor: Actor, ref: str, session: str | None) -> list[str]:
        """End one session of the user (``session``) or all of them; the ended ones."""
        user = await self._live(ref)
        now = self._clock()
        if session is None:
            ended = await self._accounts.revoke_all(user.id, now_ms=now)
        else:
            session = parse_id(session, field="session")
            if not await self._accounts.revoke_session(user.id, session, now_ms=now):
                raise NotFound("no such session")
            ended = [session]
        await self._end(user.id, session, ended)
        await self._done(
            actor, "revoke-sessions", user.id, session or f"all ({len(ended)} sessions)"
        )
        return ended

    async def grant_admin(self, actor: Actor, ref: str) -> bool:
        """Make the user a server admin (only the command line calls this)."""
        user = await self._live(ref)
        granted = await self._store.grant_admin(user.id, by=actor.id, now_ms=self._clock())
        await self._done(actor, "grant-admin", user.id, "" if granted else "already an admin")
        return granted

    async def revoke_admin(self, actor: Actor, ref: str) -> bool:
        user = (await self.find(ref)).user
        revoked = await self._store.revoke_admin(user.id)
        await self._done(actor, "revoke-admin", user.id, "" if revoked else "was not an admin")
        return revoked

    async def dismiss_group(self, actor: Actor, group_id: str) -> None:
        """End a group as its owner would (members are told; no more sends)."""
        group_id = parse_id(group_id, field="group")
        group = await self._groups.group(group_id)
        if group is None or group.dismissed_at is not None:
            raise NotFound("no such group")
        await self._groups.dismiss(group.owner, group_id)
        await self._done(actor, "dismiss-group", group_id, f"name {group.name!r}")

    async def broadcast(self, actor: Actor, text: str, *, level: str = "info") -> int:
        """A system notice in every account's inbox; how many got it."""
        text = bounded(text, field="text", low=1, high=1024)
        if level not in ("info", "warning"):
            raise BadRequest("level: must be info or warning", field="level")
        sent, after = 0, ""
        while True:
            users = await self._accounts_page(after)
            if not users:
                break
            notices = await self._inbox.post(
                [NewNotice(user, "system", {"text": text, "level": level}) for user in users],
                now_ms=self._clock(),
            )
            if self._notifier is not None:
                self._notifier.publish(notices)
            sent += len(users)
            after = users[-1]
        await self._done(actor, "broadcast", "*", f"{sent} users, {len(text)} characters")
        return sent

    async def delete_user(self, actor: Actor, ref: str) -> UserView:
        """Delete an account (README.md, "Operating Sandcat": what is erased, what stays).

        In order, each step safe to repeat if one fails: disable and end every
        session (no new login meanwhile); leave every group (an owned one passes
        to its next admin or member, or is dismissed if it has none); end every
        friendship (each friend's contact list learns it); then erase the profile,
        credentials and links and mark the account deleted. Messages it sent stay
        in others' histories under its id, whose profile reads "Deleted user".
        """
        user = await self._live(ref)
        ended = await self._accounts.disable(user.id, now_ms=self._clock())
        await self._end(user.id, None, ended)
        left = 0
        for group in await self._groups.mine(user.id):
            if group.owner == user.id:
                heir = await self._heir(user.id, group.id)
                if heir is None:
                    await self._groups.dismiss(user.id, group.id)
                    left += 1
                    continue
                await self._groups.transfer(user.id, group.id, heir)
            await self._groups.leave(user.id, group.id)
            left += 1
        friends = await self._contacts.list_friends(user.id)
        for friend in friends:
            await self._contacts.delete(user.id, friend.id)
        await self._store.erase_user(
            user.id,
            display_name=DELETED_NAME,
            avatar=default_avatar(user.id),
            password_hash=await self._passwords.hash(secrets.token_urlsafe(32)),
            now_ms=self._clock(),
        )
        await self._done(
            actor, "delete", user.id, f"{left} groups left, {len(friends)} friendships ended"
        )
        return await self.find(user.id)

    async def _heir(self, owner: str, group_id: str) -> str | None:
        """Who inherits an owned group: the first admin, else the first member to join."""
        page = await self._groups.members(owner, group_id, offset=0, limit=MAX_PAGE)
        heirs = [member.user for member in page.members if member.user != owner]
        return heirs[0] if heirs else None

    async def _accounts_page(self, after: str) -> list[str]:
        return await self._store.user_ids(after=after, limit=_BROADCAST_BATCH)

    # -- helpers ---------------------------------------------------------------------------

    async def _live(self, ref: str) -> User:
        view = await self.find(ref)
        if view.deleted_at is not None:
            raise Conflict("the account is deleted")
        return view.user

    async def _end(self, user: str, session: str | None, ended: list[str]) -> None:
        """Close the sockets of ``session`` (every one of ``user``'s if None) everywhere,
        and forget the ``ended`` sessions were live."""
        if self._cache is not None and ended:
            await self._cache.delete([session_key(user, family) for family in ended])
        if self._closer is not None:
            self._closer(user, session)
        if self._revocations is not None:
            await self._revocations.revoke(user, session)

    async def _done(self, actor: Actor, action: str, target: str, detail: str) -> None:
        entry = AuditEntry(
            actor=actor.id,
            action=action,
            target=target,
            origin=actor.origin,
            at=self._clock(),
            detail=detail,
        )
        await self._store.record(entry)
        log.info(
            "admin %s: %s on %s from %s%s",
            actor.id,
            action,
            target,
            actor.origin,
            f" ({detail})" if detail else "",
            extra={"event": "admin", "action": action, "target": target, "client": actor.origin},
        )
