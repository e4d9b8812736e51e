"""The groups aggregate: groups, their members, settings and join requests.

Creating a group opens its conversation in the same transaction. Every later
change (``GroupChanges``) is checked against the actor's role inside its
transaction, writes a system message (kind 9) with the next seq of the
group's conversation and the inbox notices it causes in that same
transaction, and returns both as a ``Change`` so the caller can push them
once committed. A refused change raises and writes nothing (no seq).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sandcat.store.inbox import Notice
from sandcat.store.messages import StoredMessage

Role = Literal["owner", "admin", "member"]
InvitePolicy = Literal["members", "admins"]
RequestStatus = Literal["pending", "approved", "rejected"]

#: Working invite links one group may have at a time (``GroupInvites.create_invite``).
MAX_LIVE_INVITES = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMember:
    user: str
    role: Role
    alias: str = ""
    joined_at: int
    #: The seq of the system message that recorded the join (0: at creation).
    joined_seq: int = 0
    #: Muted until this time (ms); 0 or a past time: not muted.
    muted_until: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    id: str
    name: str
    owner: str
    max_members: int
    avatar: str = ""
    description: str = ""
    announcement: str = ""
    created_at: int
    updated_at: int
    dismissed_at: int | None = None
    #: Joins not made by the owner or an admin wait for their approval.
    join_approval: bool = False
    #: Who may invite: every member, or only the owner and admins.
    invite_policy: InvitePolicy = "members"
    #: New members see the messages from before they joined.
    history_visible: bool = False
    #: Only the owner and admins may post.
    mute_all: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequest:
    id: str
    group: str
    user: str
    #: The member who invited ``user`` (None: the user asked to join).
    invited_by: str | None
    message: str
    status: RequestStatus
    created_at: int


@dataclass(frozen=True, slots=True)
class SystemEntry:
    """A committed system message and who was a member to receive it."""

    message: StoredMessage
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """What a committed group change wrote, for the caller to push."""

    entry: SystemEntry | None
    notices: tuple[Notice, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Invited(Change):
    added: tuple[str, ...] = ()
    requested: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Requested(Change):
    request: JoinRequest | None = None


@dataclass(frozen=True, slots=True)
class AvatarChange(Change):
    #: The avatar the group had before (a file id, or "").
    previous: str = ""


@dataclass(frozen=True, slots=True)
class MemberPage:
    members: tuple[GroupMember, ...]
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Ban:
    """A user banned from a group: they cannot join or be invited until unbanned."""

    user: str
    by: str
    created_at: int


@dataclass(frozen=True, slots=True)
class BanPage:
    bans: tuple[Ban, ...]
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteLink:
    """A way into a group for whoever holds ``token`` (joining by id needs one).

    It works until it is revoked, expires (``expires_at``, ms) or has been used
    ``max_uses`` times (None: no limit); a use is a join, or under join
    approval a join request.
    """

    id: str
    group: str
    token: str
    created_by: str
    created_at: int
    expires_at: int | None = None
    max_uses: int | None = None
    uses: int = 0
    revoked_at: int | None = None


#: Fields of ``GroupChanges.update`` and ``GroupChanges.configure``.
Fields = Mapping[str, object]


class GroupBans(Protocol):
    """The ban list; each change is checked like ``remove`` and is a group change."""

    async def ban(self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int) -> Change:
        """Ban users (owner or admins; a member only if ``actor`` outranks it), removing
        those who are members and rejecting their pending join requests; ``members.banned``."""

    async def unban(
        self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int
    ) -> Change:
        """Lift bans (owner or admins; ``NotFound`` naming a user who is not banned)."""

    async def bans_page(self, group_id: str, actor: str, *, offset: int, limit: int) -> BanPage:
        """Banned users, newest first (owner or admins)."""


class GroupInvites(Protocol):
    """Invite links: who may make one follows ``invite_policy``; not timeline events."""

    async def create_invite(self, link: InviteLink, *, now_ms: int) -> InviteLink:
        """Store ``link`` made by ``link.created_by`` (a member allowed to invite).

        Raises ``Conflict`` when the group already has ``MAX_LIVE_INVITES`` working links.
        """

    async def revoke_invite(
        self, group_id: str, actor: str, invite_id: str, *, now_ms: int
    ) -> InviteLink:
        """End a link (its creator, the owner or an admin); ``Conflict`` if already revoked."""

    async def invites(self, group_id: str, actor: str, *, now_ms: int) -> list[InviteLink]:
        """The links that still work, newest first: all for the owner and admins, a
        plain member's own for them."""


class GroupStore(GroupBans, GroupInvites, Protocol):
    async def create_group(self, group: Group, members: list[GroupMember]) -> tuple[Notice, ...]:
        """Insert the group, its members and its conversation in one transaction,
        with a ``group.invited`` notice to every member but the owner (returned).

        Raises ``BadRequest`` (field ``members``) if a member other than the
        owner is not a friend of the owner.
        """

    async def get_group(self, group_id: str) -> Group | None: ...

    async def list_members(self, group_id: str) -> list[GroupMember]: ...

    async def list_groups(self, user: str) -> list[Group]:
        """The groups ``user`` is a member of (not dismissed), newest first."""

    async def role_of(self, group_id: str, user: str) -> Role | None:
        """``user``'s role in a live group; None if not a member or dismissed."""

    # The changes: each raises ``NotFound`` for a group the actor is not in (or
    # a dismissed one), ``Forbidden`` for a role that may not, ``Conflict`` for
    # a state that does not allow it (full, already a member).

    async def invite(
        self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int
    ) -> Invited:
        """Add friends of ``actor``; or, under join approval when ``actor`` is
        neither owner nor admin, file join requests for them. ``Forbidden``
        (reason ``banned``) if one of them is banned."""

    async def request_join(
        self, group_id: str, user: str, message: str, *, token: str, now_ms: int
    ) -> Requested:
        """Ask to join with an invite link's ``token``; joins at once when the group
        needs no approval. ``NotFound`` for a token that is not one of the group's
        links, ``Forbidden`` (with a ``reason``) for a link that no longer works or
        a banned user, ``Conflict`` for a member."""

    async def decide(self, request_id: str, actor: str, *, approve: bool, now_ms: int) -> Requested:
        """Approve or reject a pending join request (owner or admin)."""

    async def remove(
        self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int, ban: bool = False
    ) -> Change:
        """Remove members: the owner any but himself, an admin only plain members;
        with ``ban``, ban them too (one ``members.banned`` change)."""

    async def leave(self, group_id: str, user: str, *, now_ms: int) -> Change:
        """Leave the group (not the owner: transfer or dismiss first)."""

    async def dismiss(self, group_id: str, actor: str, *, now_ms: int) -> Change:
        """End the group (owner only): no more sends, gone from lists."""

    async def transfer(self, group_id: str, actor: str, to: str, *, now_ms: int) -> Change:
        """Make member ``to`` the owner; the old owner becomes a member."""

    async def set_role(
        self, group_id: str, actor: str, user: str, role: Role, *, now_ms: int
    ) -> Change:
        """Make a member an admin or a plain member again (owner only)."""

    async def mute(
        self, group_id: str, actor: str, user: str, until_ms: int, *, now_ms: int
    ) -> Change:
        """Mute a member until ``until_ms`` (0 unmutes); owner or admin over lower roles."""

    async def update(self, group_id: str, actor: str, fields: Fields, *, now_ms: int) -> Change:
        """Change name, avatar, description or announcement (owner or admin)."""

    async def configure(self, group_id: str, actor: str, fields: Fields, *, now_ms: int) -> Change:
        """Change settings (owner or admin; ``max_members`` only the owner)."""

    async def set_avatar(
        self, group_id: str, actor: str, file_id: str, *, now_ms: int
    ) -> AvatarChange:
        """Point the group at a ready avatar upload (marked in use), as ``update`` does
        with ``avatar`` (owner or admin); ``NotFound`` if the upload is gone."""

    async def set_alias(self, group_id: str, user: str, alias: str, *, now_ms: int) -> Change:
        """Set the user's own alias in the group."""

    async def requests(self, group_id: str, actor: str) -> list[JoinRequest]:
        """Pending join requests, oldest first (owner or admin)."""

    async def members_page(
        self, group_id: str, actor: str, *, offset: int, limit: int, users: Sequence[str] = ()
    ) -> MemberPage:
        """Members in role, join order (the actor must be one); with ``users``,
        only those of them who are members (``total`` still counts everyone)."""
