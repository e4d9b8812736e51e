"""Who a user's ephemeral signals may reach: a conversation's writers, a user's friends.

Typing, presence and calls read these per request (never from state cached at
connect time), so a removed member or an ended friendship stops receiving
signals at once. Both queries are single indexed reads.
"""

from __future__ import annotations

from typing import Protocol


class ReachStore(Protocol):
    async def writers(self, cid: str) -> frozenset[str]:
        """The members of ``cid`` who may send in it now (none if it does not exist)."""
        ...

    async def friends(self, user: str) -> list[str]:
        """The ids of ``user``'s current friends, blocked ones (either way) left out."""
        ...

    async def may_open_direct(self, user: str, peer: str) -> bool:
        """Whether ``peer`` exists, is enabled, and neither blocks the other
        (``dm_policy = "anyone"``: what opening a direct conversation needs)."""
        ...
