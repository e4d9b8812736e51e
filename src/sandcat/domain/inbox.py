"""The inbox use cases: pull, acknowledge, post system notices, expire.

Acknowledgements are per device (the device of the caller's session): a
notice is deleted once every device of the user with a live session has
acknowledged it, so one device's ack never hides a notice from another that
has not seen it yet. Retention (``run_inbox_janitor``) expires notices that
nobody acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Protocol

import trio

from sandcat.clock import Clock
from sandcat.domain._text import bounded
from sandcat.domain.notices import Notifier
from sandcat.errors import BadRequest, StoreUnavailable
from sandcat.store.inbox import InboxPage, InboxStore, NewNotice, Notice

log = logging.getLogger(__name__)

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
_MAX_SEQ = 2**53


class DeviceLister(Protocol):
    async def live_devices(self, user: str) -> Collection[str]:
        """The devices of ``user`` with a live session."""


class Inbox:
    def __init__(
        self,
        store: InboxStore,
        *,
        devices: DeviceLister,
        notifier: Notifier,
        clock: Clock,
        retention_days: int = 30,
    ) -> None:
        self._store = store
        self._devices = devices
        self._notifier = notifier
        self._clock = clock
        self._retention_ms = retention_days * 86_400_000

    async def pull(
        self, user: str, device: str, *, after: int | None = None, limit: int = DEFAULT_LIMIT
    ) -> InboxPage:
        if after is not None and not 0 <= after < _MAX_SEQ:
            raise BadRequest("after: must be an integer of 0 to 2**53-1", field="after")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit: must be 1-{MAX_LIMIT}", field="limit")
        return await self._store.pull(user, device, after=after, limit=limit)

    async def ack(self, user: str, device: str, upto: int) -> int:
        """Acknowledge up to ``upto`` for this device; the device's ack position."""
        if not 0 <= upto < _MAX_SEQ:
            raise BadRequest("upto: must be an integer of 0 to 2**53-1", field="upto")
        live = await self._devices.live_devices(user)
        return await self._store.ack(user, device, upto, live_devices=live)

    async def head(self, user: str) -> int:
        return await self._store.head(user)

    async def post_system(self, user: str, text: str, *, level: str = "info") -> Notice:
        """Write a system notice to ``user``'s inbox and push it."""
        text = bounded(text, field="text", low=1, high=1024)
        (notice,) = await self._store.post(
            [NewNotice(user, "system", {"text": text, "level": level})], now_ms=self._clock()
        )
        self._notifier.publish([notice])
        return notice

    async def expire(self) -> int:
        """Delete notices older than the retention period; how many."""
        return await self._store.expire(before_ms=self._clock() - self._retention_ms)


async def run_inbox_janitor(inbox: Inbox, *, interval_s: float) -> None:
    """Expire old notices every ``interval_s`` until cancelled; a storage outage
    only postpones the work to the next pass (it must not end the server)."""
    while True:
        try:
            expired = await inbox.expire()
        except StoreUnavailable as exc:
            log.warning("inbox retention failed, retrying later: %s", exc)
        else:
            if expired:
                log.info("inbox retention: expired %d notices", expired)
        await trio.sleep(interval_s)
