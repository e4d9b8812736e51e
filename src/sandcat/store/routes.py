"""The route table of cluster mode: which instances hold a device of each user.

It is the presence book (``sandcat.store.presence``) read another way: every
device entry names the instance holding its connection. After the table was
lost (a Redis flush) it is incomplete until every instance has rewritten its
devices (``presence_refresh_s``); the book says so, and the caller then treats
every instance as a holder (docs/cluster-routing.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RouteBook(Protocol):
    async def holders(
        self, users: Sequence[str], *, now_ms: int, settle_ms: int
    ) -> dict[str, frozenset[str]] | None:
        """The instances holding a device of each of ``users`` (users with none left
        out), or None while the table may be incomplete: it was found missing (and
        restarted) less than ``settle_ms`` ago. Raises ``StoreUnavailable``."""
        ...
