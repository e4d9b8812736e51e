"""The connection book: how many authenticated WebSocket connections each running
instance holds, so that one answer covers the whole cluster (``sandcat admin
stats``, ``GET /api/v1/admin/stats``, the ``sandcat_cluster_connections`` gauge).

Each instance reports its own count every ``http.census_interval_s``, live for
``report_ttl_ms`` of that; an instance that stops withdraws its report, one that
dies is forgotten once its last report expires. With Redis the book is shared by
every instance and by ``sandcat admin`` (``shared`` is True); without it the
book is this process's and holds this instance's report only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: A report outlives a few missed rounds, never less than this.
MIN_REPORT_TTL_S = 10.0


def report_ttl_ms(interval_s: float) -> int:
    """How long a report made every ``interval_s`` stays counted."""
    return int(max(3 * interval_s, MIN_REPORT_TTL_S) * 1000)


@dataclass(frozen=True, slots=True)
class Headcount:
    #: Authenticated connections of the instances whose reports are live.
    connections: int
    #: Those instances.
    instances: int


class ConnectionBook(Protocol):
    #: True when every instance reports here (Redis); False: this process's book.
    shared: bool

    async def report(
        self, instance: str, connections: int, *, now_ms: int, ttl_ms: int
    ) -> Headcount:
        """Record ``instance``'s count (live until ``now_ms + ttl_ms``); the total."""
        ...

    async def total(self, *, now_ms: int) -> Headcount:
        """The live reports' total."""
        ...

    async def withdraw(self, instance: str) -> None:
        """Forget ``instance``'s report (it is stopping)."""
        ...


class MemoryConnectionBook:
    """The book of one process (no Redis): its own instance's report."""

    shared = False

    def __init__(self) -> None:
        #: instance -> (connections, expires_ms)
        self._reports: dict[str, tuple[int, int]] = {}

    async def report(
        self, instance: str, connections: int, *, now_ms: int, ttl_ms: int
    ) -> Headcount:
        self._reports[instance] = (connections, now_ms + ttl_ms)
        return await self.total(now_ms=now_ms)

    async def total(self, *, now_ms: int) -> Headcount:
        live = [count for count, expires in self._reports.values() if expires > now_ms]
        return Headcount(sum(live), len(live))

    async def withdraw(self, instance: str) -> None:
        self._reports.pop(instance, None)
