"""Contacts: friend requests and friendships.

Accepting a request makes the two users friends and opens their direct
conversation (``d:`` cid) in one transaction, so with ``dm_policy =
"friends"`` they can message each other as soon as the accept returns.
"""

from __future__ import annotations

from sandcat.clock import Clock
from sandcat.domain._text import bounded
from sandcat.errors import BadRequest
from sandcat.ids import new_id, parse_id
from sandcat.store.contacts import ContactStore, Friend, FriendRequest

_MAX_MESSAGE = 256
_MAX_REMARK = 64


def _remark(value: str) -> str:
    return bounded(value, field="remark", low=0, high=_MAX_REMARK)


class Contacts:
    """The contact use cases over a ``ContactStore``."""

    def __init__(self, store: ContactStore, *, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def send_request(
        self, user: str, *, to: str, message: str = "", remark: str = ""
    ) -> FriendRequest:
        """Ask ``to`` to become ``user``'s friend; ``remark`` is what ``user`` will
        call them. Raises ``BadRequest`` (to self, bad fields), ``NotFound``
        (no such user) and ``Conflict`` (already friends, already pending)."""
        to = parse_id(to, field="to")
        if to == user:
            raise BadRequest("to: cannot befriend yourself", field="to")
        now = self._clock()
        request = FriendRequest(
            id=new_id(),
            from_user=user,
            to_user=to,
            message=bounded(message, field="message", low=0, high=_MAX_MESSAGE),
            remark=_remark(remark),
            created_at=now,
            updated_at=now,
        )
        return await self._store.create_request(request)

    async def list_requests(self, user: str) -> list[FriendRequest]:
        """Pending requests to and from ``user``."""
        return await self._store.list_requests(user)

    async def accept(self, user: str, request_id: str, *, remark: str = "") -> Friend:
        """Accept a pending request addressed to ``user``; ``NotFound`` for any other."""
        request_id = parse_id(request_id, field="id")
        return await self._store.accept_request(
            request_id, user=user, remark=_remark(remark), now_ms=self._clock()
        )

    async def reject(self, user: str, request_id: str) -> FriendRequest:
        """Reject a pending request addressed to ``user``; ``NotFound`` for any other."""
        request_id = parse_id(request_id, field="id")
        return await self._store.reject_request(request_id, user=user, now_ms=self._clock())

    async def list_friends(self, user: str) -> list[Friend]:
        return await self._store.list_friends(user)
