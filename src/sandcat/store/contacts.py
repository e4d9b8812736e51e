"""The contacts aggregate: friend requests, friendships and blocks.

A friendship is two rows, one per direction, each with its owner's remark.
Accepting a request opens the direct conversation in the same transaction;
deleting a friendship keeps both rows as tombstones (so incremental sync can
report it) and stops both sides from writing in the conversation, which stays
readable. Every change that concerns the other user writes a notice to their
inbox in the same transaction and returns it (``Posted``).

Every change takes the next global version, so ``changes(user, since)``
returns exactly what changed after an earlier answer's version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sandcat.store.inbox import Posted

RequestStatus = Literal["pending", "accepted", "rejected", "cancelled"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FriendRequest:
    id: str
    from_user: str
    to_user: str
    message: str = ""
    remark: str = ""
    status: RequestStatus = "pending"
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Friend:
    """A friend as one user sees them: the friend's profile and my remark."""

    id: str
    username: str
    display_name: str
    avatar: str
    remark: str
    since: int
    #: Set in ``changes`` for a friendship that was deleted.
    deleted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocked:
    id: str
    username: str
    display_name: str
    avatar: str
    since: int


@dataclass(frozen=True, slots=True)
class ContactChanges:
    friends: list[Friend]
    requests: list[FriendRequest]
    version: int


class FriendRequestStore(Protocol):
    async def create_request(
        self, request: FriendRequest, *, cooldown_ms: int = 0
    ) -> Posted[FriendRequest]:
        """Store a pending request and notify the addressee.

        Raises ``NotFound`` (field ``to``) if the addressee does not exist, is
        disabled or blocks the requester; ``Conflict`` if they are friends, a
        request between them is pending, or the requester blocks them;
        ``RateLimited`` within ``cooldown_ms`` of the addressee rejecting a
        request or deleting the friendship.
        """

    async def list_requests(self, user: str) -> list[FriendRequest]:
        """Pending requests to and from ``user``, newest first."""

    async def accept_request(
        self, request_id: str, *, user: str, remark: str, now_ms: int
    ) -> Posted[Friend]:
        """Accept a pending request addressed to ``user``: both friend rows and
        the direct conversation, in one transaction. Returns the requester as
        ``user`` now sees them. ``NotFound`` for any other request id."""

    async def reject_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        """Reject a pending request addressed to ``user``; ``NotFound`` otherwise."""

    async def cancel_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        """Withdraw a pending request sent by ``user``; ``NotFound`` otherwise."""


class FriendStore(Protocol):
    async def list_friends(self, user: str) -> list[Friend]: ...

    async def delete_friend(self, user: str, friend: str, *, now_ms: int) -> Posted[None]:
        """End the friendship on both sides; ``NotFound`` if they are not friends."""

    async def set_remark(self, user: str, friend: str, remark: str, *, now_ms: int) -> Friend:
        """Set what ``user`` calls ``friend``; ``NotFound`` if they are not friends."""

    async def changes(self, user: str, *, since: int) -> ContactChanges:
        """Friends (deletions included) and requests of ``user`` changed after ``since``."""


class BlockStore(Protocol):
    async def block(self, user: str, target: str, *, now_ms: int) -> None:
        """``target`` can no longer request, message or find ``user``; pending
        requests between them are cancelled. Idempotent. ``NotFound`` if no such user."""

    async def unblock(self, user: str, target: str, *, now_ms: int) -> None:
        """Undo ``block``; friends can write to each other again. Idempotent."""

    async def list_blocks(self, user: str) -> list[Blocked]: ...


class ContactStore(FriendRequestStore, FriendStore, BlockStore, Protocol):
    """Everything the contact use cases need."""
