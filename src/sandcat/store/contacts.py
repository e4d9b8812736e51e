"""The contacts aggregate: friend requests and friendships.

A friendship is two rows, one per direction, each with its owner's remark.
Accepting a request opens the direct conversation in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

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


class ContactStore(Protocol):
    async def create_request(self, request: FriendRequest) -> FriendRequest:
        """Store a pending request.

        Raises ``NotFound`` (field ``to``) if the addressee does not exist and
        ``Conflict`` if they are already friends or the same request is pending.
        """

    async def list_requests(self, user: str) -> list[FriendRequest]:
        """Pending requests to and from ``user``, newest first."""

    async def accept_request(
        self, request_id: str, *, user: str, remark: str, now_ms: int
    ) -> Friend:
        """Accept a pending request addressed to ``user``: both friend rows and
        the direct conversation, in one transaction. Any pending request the other
        way is accepted too. Returns the requester as ``user`` now sees them.

        Raises ``NotFound`` if no pending request with that id is addressed to ``user``.
        """

    async def reject_request(self, request_id: str, *, user: str, now_ms: int) -> FriendRequest:
        """Reject a pending request addressed to ``user``; ``NotFound`` otherwise."""

    async def list_friends(self, user: str) -> list[Friend]: ...
