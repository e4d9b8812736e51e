"""Groups over HTTP: create, read, and every management route (SPEC.md §13).

A change answers with the ``seq`` of the kind-9 system message it wrote in
the group's timeline (None when nothing changed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .http_transport import JSON, HttpTransport, _fields

__all__ = [
    "Ban",
    "BanPage",
    "Group",
    "GroupMember",
    "GroupRoutes",
    "Invitation",
    "InviteLink",
    "JoinRequest",
    "MemberPage",
]


def _seq(reply: JSON) -> int | None:
    seq = reply.get("seq")
    return None if seq is None else int(seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMember:
    """A member; ``role`` is owner, admin or member; ``muted_until`` 0 when not muted."""

    user: str
    role: str
    alias: str
    joined_at: int
    joined_seq: int | None = None
    muted_until: int = 0

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> GroupMember:
        joined_seq = body.get("joined_seq")
        return cls(
            user=str(body["user"]),
            role=str(body["role"]),
            alias=str(body["alias"]),
            joined_at=int(body["joined_at"]),
            joined_seq=None if joined_seq is None else int(joined_seq),
            muted_until=int(body.get("muted_until") or 0),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """A group and its settings; ``members`` only where the server lists them
    (`GroupRoutes.create_group`, `GroupRoutes.group`)."""

    id: str
    cid: str
    name: str
    owner: str
    avatar: str
    max_members: int
    created_at: int
    description: str = ""
    announcement: str = ""
    join_approval: bool = False
    invite_policy: str = "members"
    history_visible: bool = False
    mute_all: bool = False
    members: Sequence[GroupMember] | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Group:
        members = body.get("members")
        return cls(
            id=str(body["id"]),
            cid=str(body["cid"]),
            name=str(body["name"]),
            owner=str(body["owner"]),
            avatar=str(body["avatar"]),
            max_members=int(body["max_members"]),
            created_at=int(body["created_at"]),
            description=str(body.get("description", "")),
            announcement=str(body.get("announcement", "")),
            join_approval=bool(body.get("join_approval", False)),
            invite_policy=str(body.get("invite_policy", "members")),
            history_visible=bool(body.get("history_visible", False)),
            mute_all=bool(body.get("mute_all", False)),
            members=None if members is None else tuple(GroupMember.from_json(m) for m in members),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberPage:
    """A page of members (owner, admins, then by join time) and the group's member count."""

    members: Sequence[GroupMember]
    total: int
    more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Invitation:
    """What an invitation did: users ``added`` (system message ``seq``) and the
    ones whose invitation became a join request (``requested``)."""

    seq: int | None
    added: Sequence[str]
    requested: Sequence[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequest:
    """A request to join a group; ``invited_by`` None when the user asked to join."""

    id: str
    group: str
    user: str
    invited_by: str | None
    message: str
    status: str
    created_at: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> JoinRequest:
        invited_by = body.get("invited_by")
        return cls(
            id=str(body["id"]),
            group=str(body["group"]),
            user=str(body["user"]),
            invited_by=None if invited_by is None else str(invited_by),
            message=str(body["message"]),
            status=str(body["status"]),
            created_at=int(body["created_at"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ban:
    """A user banned from a group, ``by`` whom and when."""

    user: str
    by: str
    created_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BanPage:
    """A page of the ban list (newest first) and how many bans there are."""

    bans: Sequence[Ban]
    total: int
    more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteLink:
    """An invite link: whoever holds ``token`` may join (`GroupRoutes.request_to_join`)
    until it is revoked, expires (``expires_at``, ms) or is used ``max_uses`` times."""

    id: str
    group: str
    token: str
    created_by: str
    created_at: int
    expires_at: int | None
    max_uses: int | None
    uses: int
    revoked_at: int | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> InviteLink:
        def maybe(name: str) -> int | None:
            value = body.get(name)
            return None if value is None else int(value)

        return cls(
            id=str(body["id"]),
            group=str(body["group"]),
            token=str(body["token"]),
            created_by=str(body["created_by"]),
            created_at=int(body["created_at"]),
            expires_at=maybe("expires_at"),
            max_uses=maybe("max_uses"),
            uses=int(body["uses"]),
            revoked_at=maybe("revoked_at"),
        )


class GroupRoutes(HttpTransport):
    """The ``/groups`` routes."""

    async def create_group(self, token: str, name: str, members: Sequence[str]) -> Group:
        """Create a group with the caller and ``members`` (friends of the caller)."""
        body = {"name": name, "members": list(members)}
        return Group.from_json(
            (await self._request("POST", "/groups", json=body, token=token))["group"]
        )

    async def groups(self, token: str) -> list[Group]:
        """The groups you belong to."""
        reply = await self._request("GET", "/groups", token=token)
        return [Group.from_json(g) for g in reply["groups"]]

    async def group(self, token: str, group_id: str) -> Group:
        """A group you belong to, with every member."""
        reply = await self._request("GET", f"/groups/{group_id}", token=token)
        return Group.from_json(reply["group"])

    async def update_group(
        self,
        token: str,
        group_id: str,
        *,
        name: str | None = None,
        avatar: str | None = None,
        description: str | None = None,
        announcement: str | None = None,
    ) -> Group:
        """Change the group's name, avatar (an avatar id), description or announcement."""
        body = _fields(name=name, avatar=avatar, description=description, announcement=announcement)
        reply = await self._request("PATCH", f"/groups/{group_id}", json=body, token=token)
        return Group.from_json(reply["group"])

    async def configure_group(
        self,
        token: str,
        group_id: str,
        *,
        join_approval: bool | None = None,
        invite_policy: str | None = None,
        history_visible: bool | None = None,
        mute_all: bool | None = None,
        max_members: int | None = None,
    ) -> Group:
        """Change the group's settings (``max_members``: the owner only)."""
        body = _fields(
            join_approval=join_approval,
            invite_policy=invite_policy,
            history_visible=history_visible,
            mute_all=mute_all,
            max_members=max_members,
        )
        path = f"/groups/{group_id}/settings"
        return Group.from_json(
            (await self._request("PATCH", path, json=body, token=token))["group"]
        )

    async def dismiss_group(self, token: str, group_id: str) -> int | None:
        """Dismiss the group (owner); returns the seq of ``group.dismissed``."""
        return _seq(await self._request("DELETE", f"/groups/{group_id}", token=token))

    async def group_members(
        self,
        token: str,
        group_id: str,
        *,
        offset: int | None = None,
        limit: int | None = None,
        users: Sequence[str] | None = None,
    ) -> MemberPage:
        """A page of members (``limit`` 1-200), or only those of ``users`` who are members."""
        query = {
            "offset": offset,
            "limit": limit,
            "users": None if users is None else ",".join(users),
        }
        reply = await self._request("GET", f"/groups/{group_id}/members", token=token, query=query)
        return MemberPage(
            members=tuple(GroupMember.from_json(m) for m in reply["members"]),
            total=int(reply["total"]),
            more=bool(reply["more"]),
        )

    async def invite(self, token: str, group_id: str, users: Sequence[str]) -> Invitation:
        """Add friends of yours (≤ 100 at a time)."""
        path = f"/groups/{group_id}/members"
        reply = await self._request("POST", path, json={"users": list(users)}, token=token)
        return Invitation(
            seq=_seq(reply),
            added=tuple(str(u) for u in reply["added"]),
            requested=tuple(str(u) for u in reply["requested"]),
        )

    async def remove_members(
        self, token: str, group_id: str, users: Sequence[str], *, ban: bool = False
    ) -> int | None:
        """Remove members (owner: anyone else; admins: plain members); with
        ``ban``, ban them too (the seq of ``members.banned`` then)."""
        path = f"/groups/{group_id}/members/remove"
        body = {"users": list(users), "ban": ban}
        return _seq(await self._request("POST", path, json=body, token=token))

    async def ban_users(self, token: str, group_id: str, users: Sequence[str]) -> int | None:
        """Ban users (owner or admins), removing those who are members."""
        path = f"/groups/{group_id}/bans"
        return _seq(await self._request("POST", path, json={"users": list(users)}, token=token))

    async def unban_users(self, token: str, group_id: str, users: Sequence[str]) -> int | None:
        """Lift bans (owner or admins)."""
        path = f"/groups/{group_id}/bans/remove"
        return _seq(await self._request("POST", path, json={"users": list(users)}, token=token))

    async def group_bans(
        self, token: str, group_id: str, *, offset: int | None = None, limit: int | None = None
    ) -> BanPage:
        """A page of the ban list, newest first (``limit`` 1-200; owner or admins)."""
        query = {"offset": offset, "limit": limit}
        reply = await self._request("GET", f"/groups/{group_id}/bans", token=token, query=query)
        return BanPage(
            bans=tuple(
                Ban(user=str(b["user"]), by=str(b["by"]), created_at=int(b["created_at"]))
                for b in reply["bans"]
            ),
            total=int(reply["total"]),
            more=bool(reply["more"]),
        )

    async def create_invite(
        self,
        token: str,
        group_id: str,
        *,
        expires_at: int | None = None,
        max_uses: int | None = None,
    ) -> InviteLink:
        """A new invite link (who may: the group's ``invite_policy``)."""
        body = _fields(expires_at=expires_at, max_uses=max_uses)
        reply = await self._request("POST", f"/groups/{group_id}/invites", json=body, token=token)
        return InviteLink.from_json(reply["invite"])

    async def group_invites(self, token: str, group_id: str) -> list[InviteLink]:
        """The group's links that still work (a plain member: its own)."""
        reply = await self._request("GET", f"/groups/{group_id}/invites", token=token)
        return [InviteLink.from_json(link) for link in reply["invites"]]

    async def revoke_invite(self, token: str, group_id: str, invite_id: str) -> InviteLink:
        """End an invite link (its creator, the owner or an admin)."""
        path = f"/groups/{group_id}/invites/revoke"
        reply = await self._request("POST", path, json={"invite": invite_id}, token=token)
        return InviteLink.from_json(reply["invite"])

    async def leave_group(self, token: str, group_id: str) -> int | None:
        """Leave the group (the owner transfers or dismisses instead)."""
        return _seq(await self._request("POST", f"/groups/{group_id}/leave", token=token))

    async def transfer_group(self, token: str, group_id: str, to: str) -> int | None:
        """Make member ``to`` the owner; you become a plain member."""
        path = f"/groups/{group_id}/transfer"
        return _seq(await self._request("POST", path, json={"to": to}, token=token))

    async def set_role(self, token: str, group_id: str, user: str, role: str) -> int | None:
        """Make ``user`` an ``admin`` or a plain ``member`` again (owner)."""
        body = {"user": user, "role": role}
        return _seq(
            await self._request("POST", f"/groups/{group_id}/roles", json=body, token=token)
        )

    async def mute_member(self, token: str, group_id: str, user: str, until: int) -> int | None:
        """Mute ``user`` until ``until`` (ms since the epoch; 0 unmutes)."""
        body = {"user": user, "until": until}
        return _seq(
            await self._request("POST", f"/groups/{group_id}/mutes", json=body, token=token)
        )

    async def set_alias(self, token: str, group_id: str, alias: str) -> int | None:
        """Your own alias in the group (0-64 chars)."""
        path = f"/groups/{group_id}/alias"
        return _seq(await self._request("PUT", path, json={"alias": alias}, token=token))

    async def request_to_join(
        self, token: str, group_id: str, invite_token: str, *, message: str | None = None
    ) -> JoinRequest:
        """Join with an invite link's token: approved at once (``status``
        approved), or pending under join approval."""
        path = f"/groups/{group_id}/requests"
        body = _fields(token=invite_token, message=message)
        reply = await self._request("POST", path, json=body, token=token)
        return JoinRequest.from_json(reply["request"])

    async def join_requests(self, token: str, group_id: str) -> list[JoinRequest]:
        """Pending join requests (owner or admin)."""
        reply = await self._request("GET", f"/groups/{group_id}/requests", token=token)
        return [JoinRequest.from_json(r) for r in reply["requests"]]

    async def approve_join(self, token: str, request_id: str) -> JoinRequest:
        path = f"/groups/requests/{request_id}/approve"
        return JoinRequest.from_json((await self._request("POST", path, token=token))["request"])

    async def reject_join(self, token: str, request_id: str) -> JoinRequest:
        path = f"/groups/requests/{request_id}/reject"
        return JoinRequest.from_json((await self._request("POST", path, token=token))["request"])
