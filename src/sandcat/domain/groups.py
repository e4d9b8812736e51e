"""Groups: creation, membership, roles, mutes, settings and join requests.

Creating a group opens its conversation (``g:`` cid) with every member in
the same transaction. Only friends of the creator (or of the inviter) may be
added. A group is visible only to its members: to anyone else it does not
exist (404), except that whoever holds one of its invite links' tokens may
join (or ask to, under join approval): the id alone is no secret. Banned
users cannot join or be invited, and a mute outlasts leaving and rejoining.

Every later change is checked against the actor's role in the store's
transaction, and commits with a system message in the group's timeline and
the inbox notices it causes (``store.groups``). Once committed, the system
message is pushed as MSG to the members' devices on this instance (other
instances get it through the outbox in cluster mode) and the notices as
NOTIFY. Inputs are checked here first, so a malformed request is refused
before anything is looked up.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from sandcat.clock import Clock
from sandcat.config import ChatConfig
from sandcat.domain._text import bounded, display_text
from sandcat.domain.avatars import avatar_ref
from sandcat.domain.notices import Notifier
from sandcat.errors import BadRequest, NotFound
from sandcat.ids import new_id, parse_id
from sandcat.store.groups import (
    BanPage,
    Change,
    Group,
    GroupMember,
    GroupStore,
    Invited,
    InviteLink,
    JoinRequest,
    MemberPage,
    Requested,
    Role,
)
from sandcat.store.messages import StoredMessage

#: Users one invite or removal may name.
MAX_USERS = 100
MAX_PAGE = 200
_MAX_MS = 2**53 - 1
#: Info fields and their length bounds (``update``).
_INFO = {"name": (1, 64), "avatar": (0, 512), "description": (0, 1024), "announcement": (0, 4096)}
_FLAGS = ("join_approval", "history_visible", "mute_all")
_POLICIES = ("members", "admins")
#: Most uses one invite link may allow.
MAX_INVITE_USES = 100_000
#: Random bytes of an invite link's token: 32 url-safe characters, 192 bits.
_TOKEN_BYTES = 24


C = TypeVar("C", bound=Change)


class Deliverer(Protocol):
    """Pushes a committed message to its members' devices (``pipeline.delivery.Delivery``)."""

    def deliver(self, message: StoredMessage, members: Iterable[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class GroupDetail:
    group: Group
    members: list[GroupMember]


class Groups:
    """The group use cases over a group store."""

    def __init__(
        self,
        store: GroupStore,
        *,
        config: ChatConfig,
        clock: Clock,
        notifier: Notifier | None = None,
        delivery: Deliverer | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._notifier = notifier
        self._delivery = delivery

    async def create(self, owner: str, *, name: str, members: list[str]) -> GroupDetail:
        """Create a group owned by ``owner`` with ``members`` (friends of the owner).

        Raises ``BadRequest`` naming ``name`` or ``members`` (not friends, too many).
        """
        name = display_text(name, field="name", low=1, high=64)
        limit = self._config.max_group_members
        users = _users(members, field="members", high=limit + 1)
        others = [user for user in users if user != owner]
        if len(others) + 1 > limit:
            raise BadRequest(
                f"members: a group has at most {limit} members, creator included",
                field="members",
            )
        now = self._clock()
        group = Group(
            id=new_id(),
            name=name,
            owner=owner,
            max_members=limit,
            created_at=now,
            updated_at=now,
        )
        roster = [GroupMember(user=owner, role="owner", joined_at=now)]
        roster += [GroupMember(user=user, role="member", joined_at=now) for user in others]
        notices = await self._store.create_group(group, roster)
        if self._notifier is not None:
            self._notifier.publish(notices)
        return GroupDetail(group, roster)

    async def get(self, user: str, group_id: str) -> GroupDetail:
        """The group with its members, if ``user`` is one; ``NotFound`` otherwise."""
        group_id = parse_id(group_id, field="id")
        group = await self._store.get_group(group_id)
        members = [] if group is None else await self._store.list_members(group_id)
        if group is None or group.dismissed_at is not None or user not in {m.user for m in members}:
            raise NotFound("no such group")
        return GroupDetail(group, members)

    async def group(self, group_id: str) -> Group | None:
        """The group ``group_id``, dismissed or not, whoever asks (server admins)."""
        return await self._store.get_group(group_id)

    async def mine(self, user: str) -> list[Group]:
        """The groups ``user`` belongs to."""
        return await self._store.list_groups(user)

    async def role_of(self, group_id: str, user: str) -> Role | None:
        """``user``'s role in the live group ``group_id``; None if not a member."""
        return await self._store.role_of(group_id, user)

    async def members(
        self, user: str, group_id: str, *, offset: int, limit: int, only: Sequence[str] = ()
    ) -> MemberPage:
        """A page of members, or with ``only`` those of the named users who are members."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit: must be 1-{MAX_PAGE}", field="limit")
        chosen = _users(only, field="users")
        group_id = parse_id(group_id, field="id")
        return await self._store.members_page(
            group_id, user, offset=offset, limit=limit, users=chosen
        )

    async def requests(self, user: str, group_id: str) -> list[JoinRequest]:
        return await self._store.requests(parse_id(group_id, field="id"), user)

    async def invite(self, actor: str, group_id: str, users: list[str]) -> Invited:
        chosen = _users(users, field="users", low=1)
        group_id = parse_id(group_id, field="id")
        return self._pushed(await self._store.invite(group_id, actor, chosen, now_ms=self._clock()))

    async def request_join(
        self, user: str, group_id: str, message: str | None, *, token: str
    ) -> Requested:
        """Join with an invite link's token (a join request under join approval)."""
        text = bounded(message or "", field="message", low=0, high=256)
        token = parse_id(token, field="token")
        group_id = parse_id(group_id, field="id")
        return self._pushed(
            await self._store.request_join(group_id, user, text, token=token, now_ms=self._clock())
        )

    async def decide(self, actor: str, request_id: str, *, approve: bool) -> Requested:
        request_id = parse_id(request_id, field="id")
        return self._pushed(
            await self._store.decide(request_id, actor, approve=approve, now_ms=self._clock())
        )

    async def remove(
        self, actor: str, group_id: str, users: list[str], *, ban: bool = False
    ) -> Change:
        chosen = _users(users, field="users", low=1)
        group_id = parse_id(group_id, field="id")
        return self._pushed(
            await self._store.remove(group_id, actor, chosen, now_ms=self._clock(), ban=ban)
        )

    async def ban(self, actor: str, group_id: str, users: list[str]) -> Change:
        """Ban users from the group, removing those who are members."""
        chosen = _users(users, field="users", low=1)
        group_id = parse_id(group_id, field="id")
        return self._pushed(await self._store.ban(group_id, actor, chosen, now_ms=self._clock()))

    async def unban(self, actor: str, group_id: str, users: list[str]) -> Change:
        chosen = _users(users, field="users", low=1)
        group_id = parse_id(group_id, field="id")
        return self._pushed(await self._store.unban(group_id, actor, chosen, now_ms=self._clock()))

    async def bans(self, actor: str, group_id: str, *, offset: int, limit: int) -> BanPage:
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit: must be 1-{MAX_PAGE}", field="limit")
        group_id = parse_id(group_id, field="id")
        return await self._store.bans_page(group_id, actor, offset=offset, limit=limit)

    async def create_invite(
        self, actor: str, group_id: str, *, expires_at: int | None, max_uses: int | None
    ) -> InviteLink:
        """A new invite link; ``expires_at`` (ms, in the future) and ``max_uses`` optional."""
        now = self._clock()
        if expires_at is not None and not now < expires_at <= _MAX_MS:
            raise BadRequest("expires_at: must be a time in ms in the future", field="expires_at")
        if max_uses is not None and not 1 <= max_uses <= MAX_INVITE_USES:
            raise BadRequest(f"max_uses: must be 1-{MAX_INVITE_USES}", field="max_uses")
        group_id = parse_id(group_id, field="id")
        link = InviteLink(
            id=new_id(),
            group=group_id,
            token=secrets.token_urlsafe(_TOKEN_BYTES),
            created_by=actor,
            created_at=now,
            expires_at=expires_at,
            max_uses=max_uses,
        )
        return await self._store.create_invite(link, now_ms=now)

    async def revoke_invite(self, actor: str, group_id: str, invite_id: str) -> InviteLink:
        invite_id = parse_id(invite_id, field="invite")
        group_id = parse_id(group_id, field="id")
        return await self._store.revoke_invite(group_id, actor, invite_id, now_ms=self._clock())

    async def invites(self, actor: str, group_id: str) -> list[InviteLink]:
        """The group's working links (a plain member: their own)."""
        group_id = parse_id(group_id, field="id")
        return await self._store.invites(group_id, actor, now_ms=self._clock())

    async def leave(self, user: str, group_id: str) -> Change:
        group_id = parse_id(group_id, field="id")
        return self._pushed(await self._store.leave(group_id, user, now_ms=self._clock()))

    async def dismiss(self, actor: str, group_id: str) -> Change:
        group_id = parse_id(group_id, field="id")
        return self._pushed(await self._store.dismiss(group_id, actor, now_ms=self._clock()))

    async def transfer(self, actor: str, group_id: str, to: str) -> Change:
        to = parse_id(to, field="to")
        group_id = parse_id(group_id, field="id")
        return self._pushed(await self._store.transfer(group_id, actor, to, now_ms=self._clock()))

    async def set_role(self, actor: str, group_id: str, user: str, role: str) -> Change:
        user = parse_id(user, field="user")
        if role not in ("admin", "member"):
            raise BadRequest('role: must be "admin" or "member"', field="role")
        group_id = parse_id(group_id, field="id")
        return self._pushed(
            await self._store.set_role(
                group_id, actor, user, cast(Role, role), now_ms=self._clock()
            )
        )

    async def mute(self, actor: str, group_id: str, user: str, until_ms: int) -> Change:
        user = parse_id(user, field="user")
        if not 0 <= until_ms <= _MAX_MS:
            raise BadRequest("until: must be a time in ms, or 0 to unmute", field="until")
        group_id = parse_id(group_id, field="id")
        return self._pushed(
            await self._store.mute(group_id, actor, user, until_ms, now_ms=self._clock())
        )

    async def update(self, actor: str, group_id: str, fields: dict[str, object]) -> Group:
        changes: dict[str, object] = {}
        for name, value in fields.items():
            if name not in _INFO:
                raise BadRequest(f"{name}: not a field of the group's information", field=name)
            if not isinstance(value, str):
                raise BadRequest(f"{name}: must be a string", field=name)
            low, high = _INFO[name]
            if name == "avatar":
                changes[name] = avatar_ref(bounded(value, field=name, low=low, high=high))
            elif name == "name":
                changes[name] = display_text(value, field=name, low=low, high=high)
            else:
                changes[name] = bounded(value, field=name, low=low, high=high)
        return await self._change_fields(actor, group_id, changes, settings=False)

    async def configure(self, actor: str, group_id: str, fields: dict[str, object]) -> Group:
        changes: dict[str, object] = {}
        for name, value in fields.items():
            if name in _FLAGS:
                if not isinstance(value, bool):
                    raise BadRequest(f"{name}: must be true or false", field=name)
            elif name == "invite_policy":
                if value not in _POLICIES:
                    raise BadRequest('invite_policy: must be "members" or "admins"', field=name)
            elif name == "max_members":
                limit = self._config.max_group_members
                if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= limit:
                    raise BadRequest(f"max_members: must be 2-{limit}", field=name)
            else:
                raise BadRequest(f"{name}: not a group setting", field=name)
            changes[name] = value
        return await self._change_fields(actor, group_id, changes, settings=True)

    async def set_avatar(self, actor: str, group_id: str, file_id: str) -> str:
        """Point the group at the avatar upload ``file_id`` with the same ``group.updated``
        message as ``update``; the previous avatar."""
        group_id = parse_id(group_id, field="id")
        change = await self._store.set_avatar(group_id, actor, file_id, now_ms=self._clock())
        self._pushed(change)
        return change.previous

    async def _change_fields(
        self, actor: str, group_id: str, changes: dict[str, object], *, settings: bool
    ) -> Group:
        if not changes:
            raise BadRequest("nothing to change")
        group_id = parse_id(group_id, field="id")
        change = self._store.configure if settings else self._store.update
        self._pushed(await change(group_id, actor, changes, now_ms=self._clock()))
        group = await self._store.get_group(group_id)
        assert group is not None
        return group

    async def set_alias(self, user: str, group_id: str, alias: str) -> Change:
        alias = display_text(alias, field="alias", low=0, high=64)
        group_id = parse_id(group_id, field="id")
        return self._pushed(
            await self._store.set_alias(group_id, user, alias, now_ms=self._clock())
        )

    def _pushed(self, change: C) -> C:
        """Push a committed change: its system message as MSG, its notices as NOTIFY."""
        if change.entry is not None and self._delivery is not None:
            self._delivery.deliver(change.entry.message, change.entry.members)
        if change.notices and self._notifier is not None:
            self._notifier.publish(change.notices)
        return change


def _users(values: Sequence[str], *, field: str, low: int = 0, high: int = MAX_USERS) -> list[str]:
    """Parsed, de-duplicated user ids, in order."""
    users = list(dict.fromkeys(parse_id(value, field=field) for value in values))
    if not low <= len(users) <= high:
        raise BadRequest(f"{field}: name {low}-{high} users", field=field)
    return users
