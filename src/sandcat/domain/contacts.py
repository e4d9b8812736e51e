"""Contacts: friend requests, friendships and blocks.

Accepting a request makes the two users friends and opens their direct
conversation (``d:`` cid) in one transaction, so with ``dm_policy =
"friends"`` they can message each other as soon as the accept returns.
Deleting a friend keeps that conversation readable for both, not writable.
A blocked user cannot request, message or find the blocker: they get the
answers a stranger gets. Every change the other side must hear about is
written to their inbox with the change and pushed live after the commit.
"""

from __future__ import annotations

from typing import TypeVar

from sandcat.clock import Clock
from sandcat.config import ChatConfig
from sandcat.domain._text import bounded
from sandcat.domain.notices import Notifier
from sandcat.errors import BadRequest, RateLimited
from sandcat.ids import new_id, parse_id
from sandcat.store.contacts import Blocked, ContactChanges, ContactStore, Friend, FriendRequest
from sandcat.store.inbox import Posted
from sandcat.store.ratelimit import Limiters, LocalLimiters, address_key

_MAX_MESSAGE = 256
_MAX_REMARK = 64

T = TypeVar("T")


def _remark(value: str) -> str:
    return bounded(value, field="remark", low=0, high=_MAX_REMARK)


class Contacts:
    """The contact use cases over a ``ContactStore``."""

    def __init__(
        self,
        store: ContactStore,
        *,
        clock: Clock,
        notifier: Notifier,
        config: ChatConfig | None = None,
        limiters: Limiters | None = None,
    ) -> None:
        config = config or ChatConfig()
        self._store = store
        self._clock = clock
        self._notifier = notifier
        self._cooldown_ms = config.friend_request_cooldown_s * 1000
        limiters = limiters or LocalLimiters(clock)
        window = config.friend_request_window_s
        #: A request and its cancel make two notices for the addressee: each of
        #: these bounds how many one sender (or address) can cause per window.
        self._request_limits = (
            limiters.limiter(
                "friend-requests-pair", limit=config.friend_requests_per_pair, window_s=window
            ),
            limiters.limiter(
                "friend-requests-user", limit=config.friend_requests_per_user, window_s=window
            ),
            limiters.limiter(
                "friend-requests-ip", limit=config.friend_requests_per_ip, window_s=window
            ),
        )

    def _published(self, posted: Posted[T]) -> T:
        self._notifier.publish(posted.notices)
        return posted.value

    async def send_request(
        self, user: str, *, to: str, message: str = "", remark: str = "", ip: str | None = None
    ) -> FriendRequest:
        """Ask ``to`` to become ``user``'s friend; ``remark`` is what ``user`` will
        call them. Raises ``BadRequest`` (to self, bad fields), ``NotFound``
        (no such user, or one who blocks ``user``), ``Conflict`` (already
        friends, already pending, blocked by ``user``) and ``RateLimited``
        (within the cool-down after a rejection or an unfriending, or past the
        requests allowed per addressee, per sender or per address ``ip``;
        only requests that were sent count)."""
        to = parse_id(to, field="to")
        if to == user:
            raise BadRequest("to: cannot befriend yourself", field="to")
        keys = (f"{user}:{to}", user, address_key(ip))
        for limiter, key in zip(self._request_limits, keys, strict=True):
            wait = await limiter.retry_after_ms(key)
            if wait:
                raise RateLimited("too many friend requests; wait", retry_after_ms=wait)
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
        sent = self._published(
            await self._store.create_request(request, cooldown_ms=self._cooldown_ms)
        )
        for limiter, key in zip(self._request_limits, keys, strict=True):
            await limiter.hit(key)
        return sent

    async def list_requests(self, user: str) -> list[FriendRequest]:
        """Pending requests to and from ``user``."""
        return await self._store.list_requests(user)

    async def accept(self, user: str, request_id: str, *, remark: str = "") -> Friend:
        """Accept a pending request addressed to ``user``; ``NotFound`` for any other."""
        request_id = parse_id(request_id, field="id")
        posted = await self._store.accept_request(
            request_id, user=user, remark=_remark(remark), now_ms=self._clock()
        )
        return self._published(posted)

    async def reject(self, user: str, request_id: str) -> FriendRequest:
        """Reject a pending request addressed to ``user``; ``NotFound`` for any other."""
        request_id = parse_id(request_id, field="id")
        posted = await self._store.reject_request(request_id, user=user, now_ms=self._clock())
        return self._published(posted)

    async def cancel(self, user: str, request_id: str) -> FriendRequest:
        """Withdraw a pending request ``user`` sent; ``NotFound`` for any other."""
        request_id = parse_id(request_id, field="id")
        posted = await self._store.cancel_request(request_id, user=user, now_ms=self._clock())
        return self._published(posted)

    async def list_friends(self, user: str) -> list[Friend]:
        return await self._store.list_friends(user)

    async def delete(self, user: str, friend: str) -> None:
        """End the friendship with ``friend`` on both sides; ``NotFound`` if none."""
        friend = parse_id(friend, field="id")
        self._published(await self._store.delete_friend(user, friend, now_ms=self._clock()))

    async def set_remark(self, user: str, friend: str, remark: str) -> Friend:
        friend = parse_id(friend, field="id")
        return await self._store.set_remark(user, friend, _remark(remark), now_ms=self._clock())

    async def changes(self, user: str, since: int) -> ContactChanges:
        """What changed in ``user``'s contacts after version ``since`` (0: everything)."""
        return await self._store.changes(user, since=since)

    async def block(self, user: str, target: str) -> None:
        target = parse_id(target, field="id")
        if target == user:
            raise BadRequest("id: cannot block yourself", field="id")
        await self._store.block(user, target, now_ms=self._clock())

    async def unblock(self, user: str, target: str) -> None:
        target = parse_id(target, field="id")
        await self._store.unblock(user, target, now_ms=self._clock())

    async def list_blocks(self, user: str) -> list[Blocked]:
        return await self._store.list_blocks(user)
