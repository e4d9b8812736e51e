"""Groups over HTTP: create, read, and every management route (SPEC.md §13).

A change answers with the ``seq`` of the kind-9 system message it wrote in
the group's timeline (None when nothing changed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .http_transport import JSON, HttpTransport, _fields

__all__ = ["Group", "GroupMember", "GroupRoutes", "Invitation", "JoinRequest", "MemberPage"]


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

    async def remove_members(self, token: str, group_id: str, users: Sequence[str]) -> int | None:
        """Remove members (owner: anyone else; admins: plain members)."""
        path = f"/groups/{group_id}/members/remove"
        return _seq(await self._request("POST", path, json={"users": list(users)}, token=token))

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
        self, token: str, group_id: str, *, message: str | None = None
    ) -> JoinRequest:
        """Ask to join; approved at once (``status`` approved) without join approval."""
        path = f"/groups/{group_id}/requests"
        reply = await self._request("POST", path, json=_fields(message=message), token=token)
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
