"""The census: how many accounts and live sessions the database holds
(``sandcat.domain.census`` keeps the gauges that show it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Census:
    #: Accounts in the database (disabled ones included).
    users: int
    #: Sessions (signed-in devices) neither revoked nor expired at ``now_ms``.
    sessions: int


class CensusStore(Protocol):
    async def census(self, *, now_ms: int) -> Census:
        """Count the accounts and the live sessions."""
