"""The call book: calls in progress, and who is in one (busy detection).

A user takes part in at most one call at a time. ``open`` claims both users
atomically, so two invitations racing for the same user cannot both ring;
``answer`` and ``close`` are compare-and-set steps, so exactly one of a
racing accept and cancel wins and exactly one closer writes the call log.
In memory for one instance (``MemoryCallBook``); in Redis for a cluster
(``sandcat.store.redis.calls``), where every entry also expires after
``ttl_ms`` unless the instance that opened the call refreshes it, so the
users of a call whose instance died are not busy forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

Opened = Literal["opened", "caller_busy", "callee_busy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    id: str
    caller: str
    caller_device: str
    callee: str
    media: str
    state: Literal["ringing", "active"] = "ringing"
    created_ms: int
    #: Set once answered.
    callee_device: str = ""
    answered_ms: int = 0

    def party(self, user: str, device: str) -> Literal["caller", "callee"] | None:
        """Which side ``device`` of ``user`` speaks for (a bound device), if any."""
        if user == self.caller and device == self.caller_device:
            return "caller"
        if user == self.callee and device == self.callee_device:
            return "callee"
        return None


class CallBook(Protocol):
    async def open(self, call: CallRecord, *, ttl_ms: int) -> Opened:
        """Store a ringing call unless its caller or callee is in a call already."""
        ...

    async def get(self, call_id: str) -> CallRecord | None: ...

    async def answer(self, call_id: str, device: str, *, now_ms: int) -> CallRecord | None:
        """Ringing -> active, bound to the callee's ``device``; None if not ringing (any more)."""
        ...

    async def close(self, call_id: str, *, ringing_only: bool = False) -> CallRecord | None:
        """Remove the call and free its users; the call as it was, or None if another
        closer was first (or, with ``ringing_only``, it is no longer ringing)."""
        ...

    async def touch(self, call_ids: Sequence[str], *, ttl_ms: int) -> None:
        """Keep these calls (and their users' claims) alive for another ``ttl_ms``."""
        ...


class MemoryCallBook:
    """The embedded call book (one process: entries need no expiry)."""

    def __init__(self) -> None:
        self._calls: dict[str, CallRecord] = {}
        self._users: dict[str, str] = {}

    async def open(self, call: CallRecord, *, ttl_ms: int) -> Opened:
        if call.caller in self._users:
            return "caller_busy"
        if call.callee in self._users:
            return "callee_busy"
        self._calls[call.id] = call
        self._users[call.caller] = self._users[call.callee] = call.id
        return "opened"

    async def get(self, call_id: str) -> CallRecord | None:
        return self._calls.get(call_id)

    async def answer(self, call_id: str, device: str, *, now_ms: int) -> CallRecord | None:
        call = self._calls.get(call_id)
        if call is None or call.state != "ringing":
            return None
        call = replace(call, state="active", callee_device=device, answered_ms=now_ms)
        self._calls[call_id] = call
        return call

    async def close(self, call_id: str, *, ringing_only: bool = False) -> CallRecord | None:
        call = self._calls.get(call_id)
        if call is None or (ringing_only and call.state != "ringing"):
            return None
        del self._calls[call_id]
        for user in (call.caller, call.callee):
            if self._users.get(user) == call_id:
                del self._users[user]
        return call

    async def touch(self, call_ids: Sequence[str], *, ttl_ms: int) -> None:
        return None
