"""The inbox aggregate: per-user notices (friend requests, invitations, ...).

Each notice gets the next ``nseq`` of its user: 1, 2, 3, ... never reused,
even after notices are deleted. Stores of other aggregates write notices in
the same transaction as the change that causes them and return them as
``Posted`` so the caller can push them live after the commit. Each device
acknowledges what it has handled; a notice is deleted once every live device
of its user has acknowledged it, and expired by retention otherwise.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NewNotice:
    user: str
    type: str
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Notice:
    user: str
    nseq: int
    type: str
    data: Mapping[str, object]
    created_at: int


@dataclass(frozen=True, slots=True)
class Posted(Generic[T]):
    """A store result together with the notices its transaction wrote."""

    value: T
    notices: tuple[Notice, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class InboxPage:
    notices: tuple[Notice, ...]
    more: bool
    max_nseq: int


class InboxStore(Protocol):
    async def post(self, notices: Sequence[NewNotice], *, now_ms: int) -> list[Notice]:
        """Write notices on their own (system notices), in one transaction."""

    async def pull(self, user: str, device: str, *, after: int | None, limit: int) -> InboxPage:
        """Notices with nseq > ``after`` (or > the device's ack when None), ascending."""

    async def ack(self, user: str, device: str, upto: int, *, live_devices: Collection[str]) -> int:
        """Record that ``device`` handled notices up to ``upto`` (never moving back,
        capped at the head), then delete the notices every device in
        ``live_devices`` has acked. Returns the device's ack position."""

    async def head(self, user: str) -> int:
        """The highest nseq handed out to ``user`` (0 if none)."""

    async def expire(self, *, before_ms: int) -> int:
        """Delete notices created before ``before_ms``; how many were deleted."""


class NoticeOutbox(Protocol):
    """The relational inbox read as an outbox while the inbox lives in MongoDB
    (``sandcat.domain.inbox_relay`` moves the notices)."""

    async def pending(self, limit: int) -> list[Notice]:
        """The oldest notices waiting, by user and nseq."""

    async def remove(self, notices: Sequence[Notice]) -> None:
        """Delete delivered notices."""
