"""Typing indicators: TYPING from a member, pushed to the conversation's other members.

Membership is read from the store on every TYPING (never from connect-time
state), so someone removed from a group or unfriended stops at once. Nothing
is stored. Each connection may signal each conversation once per
``typing_interval_s``; a stop right after a start is let through, so a client
can always clear the indicator it raised. Anything more is refused with ERR
``rate_limited`` (``retry_after_ms``) and delivered to nobody. Clients hide an
indicator that is not refreshed within 6 s (SPEC.md §4.16).

On top of that each user may send ``typing_per_user`` TYPING per
``typing_window_s`` over all connections, conversations and instances (a
shared limiter): the per-connection table forgets old conversations, and
without this bound TYPING spread over more conversations than it remembers
went through unlimited.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Protocol

import trio

from sandcat.errors import Forbidden, RateLimited
from sandcat.gateway.beacon import Beacon
from sandcat.protocol import Ok, Typing, TypingEvent, encode
from sandcat.store.ratelimit import RateLimits
from sandcat.store.reach import ReachStore

#: Conversations remembered per connection for the rate limit (oldest forgotten first).
_TRACKED_PER_CONNECTION = 64


class Typist(Protocol):
    @property
    def user(self) -> str: ...
    def push(self, data: bytes) -> None: ...


class Indicators:
    def __init__(
        self, reach: ReachStore, beacon: Beacon, *, interval_s: float, per_user: RateLimits
    ) -> None:
        self._reach = reach
        self._beacon = beacon
        self._interval_s = interval_s
        self._per_user = per_user
        #: connection -> cid -> (when its last TYPING went out, whether it was a start)
        self._last: weakref.WeakKeyDictionary[Typist, OrderedDict[str, tuple[float, bool]]] = (
            weakref.WeakKeyDictionary()
        )

    async def typing(self, conn: Typist, frame: Typing) -> None:
        now = trio.current_time()
        sent = self._last.setdefault(conn, OrderedDict())
        last = sent.get(frame.cid)
        clearing = last is not None and last[1] and not frame.active
        if last is not None:
            elapsed = now - last[0]
            if elapsed < self._interval_s and not clearing:
                wait_ms = int((self._interval_s - elapsed) * 1000) + 1
                raise RateLimited(
                    "one TYPING per conversation per interval", retry_after_ms=wait_ms
                )
        if not clearing:
            wait_ms = await self._per_user.take(conn.user)
            if wait_ms:
                raise RateLimited("too many TYPING from this user", retry_after_ms=wait_ms)
        writers = await self._reach.writers(frame.cid)
        if conn.user not in writers:
            raise Forbidden("not a member of this conversation")
        sent[frame.cid] = (now, frame.active)
        sent.move_to_end(frame.cid)
        while len(sent) > _TRACKED_PER_CONNECTION:
            sent.popitem(last=False)
        event = encode(TypingEvent(cid=frame.cid, user=conn.user, active=frame.active))
        self._beacon.push([(user, None, None) for user in writers if user != conn.user], event)
        conn.push(encode(Ok(rid=frame.rid, body={})))
