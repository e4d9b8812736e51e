"""Reading a conversation's history, and hiding messages from one user.

The message log (``sandcat.store.messages``) is written by the send path and
read forwards by PULL; this interface reads it in both directions, looks a
message up by its mid, and keeps each user's "delete for me" set. Every
answer respects membership, the conversation's ``min_seq`` and the user's
hidden messages (SPEC.md "The timeline").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sandcat.store.messages import Page, StoredMessage


class HistoryStore(Protocol):
    async def history(
        self, user: str, cid: str, *, before: int | None, after: int | None, limit: int
    ) -> Page:
        """At most ``limit`` messages of ``cid`` visible to ``user``, ascending.

        With ``after``: those with a greater seq (``more``: newer ones exist).
        Otherwise those below ``before`` (None: the latest), ``more`` saying
        older ones exist. ``Forbidden`` if ``user`` is not a member.
        """
        ...

    async def message(self, user: str, mid: str) -> StoredMessage:
        """The message ``mid`` if ``user`` may see it; ``NotFound`` otherwise (same answer)."""
        ...

    async def roles(self, cid: str, users: Sequence[str]) -> dict[str, str]:
        """The role of each of ``users`` that is a member of ``cid``.

        In a group: ``owner``, ``admin`` or ``member`` (its member list); in a
        direct conversation: ``member`` for both sides.
        """
        ...

    async def hide(self, user: str, cid: str, seqs: Sequence[int], *, now_ms: int) -> None:
        """Hide ``seqs`` of ``cid`` from ``user`` only (idempotent).

        ``Forbidden`` if not a member; ``BadRequest`` (nothing hidden) if a seq
        is above the conversation's ``max_seq``.
        """
        ...
