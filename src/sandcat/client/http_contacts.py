"""Contacts over HTTP: friend requests, friends, incremental contact sync, blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .http_transport import HttpTransport, _fields

__all__ = [
    "Blocked",
    "ContactChanges",
    "ContactRoutes",
    "Friend",
    "FriendRequest",
    "FriendRequests",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Friend:
    """A friend, with the ``cid`` of your direct conversation (``d:<a>:<b>``)."""

    id: str
    username: str
    display_name: str
    avatar: str
    remark: str
    since: int
    cid: str
    #: In `ContactChanges` only: the friendship ended.
    deleted: bool = False

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Friend:
        return cls(
            id=str(body["id"]),
            username=str(body["username"]),
            display_name=str(body["display_name"]),
            avatar=str(body["avatar"]),
            remark=str(body["remark"]),
            since=int(body["since"]),
            cid=str(body["cid"]),
            deleted=bool(body.get("deleted", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FriendRequest:
    """A friend request; ``status`` is pending, accepted, rejected or cancelled."""

    id: str
    sender: str  # "from" on the wire
    to: str
    message: str
    remark: str
    status: str
    created_at: int
    updated_at: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> FriendRequest:
        return cls(
            id=str(body["id"]),
            sender=str(body["from"]),
            to=str(body["to"]),
            message=str(body["message"]),
            remark=str(body["remark"]),
            status=str(body["status"]),
            created_at=int(body["created_at"]),
            updated_at=int(body["updated_at"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FriendRequests:
    """Pending requests addressed to you (``incoming``) and sent by you (``outgoing``)."""

    incoming: Sequence[FriendRequest]
    outgoing: Sequence[FriendRequest]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactChanges:
    """Friends (ended ones with ``deleted``) and requests changed after a version."""

    friends: Sequence[Friend]
    requests: Sequence[FriendRequest]
    #: Pass as ``since`` next time.
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocked:
    """A user you block."""

    id: str
    username: str
    display_name: str
    avatar: str
    since: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Blocked:
        return cls(
            id=str(body["id"]),
            username=str(body["username"]),
            display_name=str(body["display_name"]),
            avatar=str(body["avatar"]),
            since=int(body["since"]),
        )


class ContactRoutes(HttpTransport):
    """The ``/friends`` and ``/blocks`` routes."""

    async def request_friend(
        self, token: str, to: str, *, message: str | None = None, remark: str | None = None
    ) -> FriendRequest:
        """Ask user ``to`` to be friends."""
        body = _fields(to=to, message=message, remark=remark)
        reply = await self._request("POST", "/friends/requests", json=body, token=token)
        return FriendRequest.from_json(reply["request"])

    async def friend_requests(self, token: str) -> FriendRequests:
        """Pending requests to and from you."""
        reply = await self._request("GET", "/friends/requests", token=token)
        return FriendRequests(
            incoming=tuple(FriendRequest.from_json(r) for r in reply["incoming"]),
            outgoing=tuple(FriendRequest.from_json(r) for r in reply["outgoing"]),
        )

    async def accept_friend(
        self, token: str, request_id: str, *, remark: str | None = None
    ) -> Friend:
        """Accept a friend request; returns the new friend (with the direct ``cid``)."""
        path = f"/friends/requests/{request_id}/accept"
        reply = await self._request("POST", path, json=_fields(remark=remark), token=token)
        return Friend.from_json(reply["friend"])

    async def reject_friend(self, token: str, request_id: str) -> FriendRequest:
        """Reject a request addressed to you."""
        reply = await self._request("POST", f"/friends/requests/{request_id}/reject", token=token)
        return FriendRequest.from_json(reply["request"])

    async def cancel_friend_request(self, token: str, request_id: str) -> FriendRequest:
        """Withdraw a request you sent."""
        reply = await self._request("POST", f"/friends/requests/{request_id}/cancel", token=token)
        return FriendRequest.from_json(reply["request"])

    async def friends(self, token: str) -> list[Friend]:
        """Your friends."""
        reply = await self._request("GET", "/friends", token=token)
        return [Friend.from_json(f) for f in reply["friends"]]

    async def sync_contacts(self, token: str, since: int | None = None) -> ContactChanges:
        """Friends and requests changed after version ``since`` (all of them without it)."""
        reply = await self._request("GET", "/friends/sync", token=token, query={"since": since})
        return ContactChanges(
            friends=tuple(Friend.from_json(f) for f in reply["friends"]),
            requests=tuple(FriendRequest.from_json(r) for r in reply["requests"]),
            version=int(reply["version"]),
        )

    async def set_remark(self, token: str, friend_id: str, remark: str) -> Friend:
        """What you call this friend."""
        body = {"remark": remark}
        reply = await self._request("PATCH", f"/friends/{friend_id}", json=body, token=token)
        return Friend.from_json(reply["friend"])

    async def delete_friend(self, token: str, friend_id: str) -> None:
        """End the friendship on both sides (the conversation stays readable)."""
        await self._request("DELETE", f"/friends/{friend_id}", token=token)

    async def blocks(self, token: str) -> list[Blocked]:
        """Users you block."""
        reply = await self._request("GET", "/blocks", token=token)
        return [Blocked.from_json(b) for b in reply["blocks"]]

    async def block(self, token: str, user_id: str) -> None:
        """Stop a user from requesting, messaging or finding you."""
        await self._request("PUT", f"/blocks/{user_id}", token=token)

    async def unblock(self, token: str, user_id: str) -> None:
        await self._request("DELETE", f"/blocks/{user_id}", token=token)
