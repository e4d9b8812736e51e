"""Notices written in a relational transaction, delivered to an inbox in MongoDB.

A friend request and the notice that tells its recipient about it must not
part ways: the notice is written in the same SQL transaction as the change
(``Tx.post``), so either both happen or neither. With the inbox in
MongoDB that transaction cannot reach the inbox, so the relational ``inbox``
table becomes an outbox: the transaction writes the notice there as always,
and this relay moves it into MongoDB afterwards, then deletes the SQL row.

- **At least once, exactly one notice.** A row is deleted only after MongoDB
  has stored it; a crash in between delivers it again, and the MongoDB store
  recognises the row's key (``sql:USER:NSEQ``; the SQL nseq is never reused)
  and returns the notice it already has. Two instances relaying the same row
  race harmlessly the same way.
- **nseq is the inbox's.** The user-visible nseq is assigned by MongoDB when
  the notice arrives there (gap-free per user; see
  ``sandcat.store.mongo.inbox``). The SQL nseq only orders the outbox. So
  the live NOTIFY is pushed by the relay, after MongoDB has the notice, with
  MongoDB's nseq: a device never sees an nseq the inbox cannot serve.
- **Soon, and eventually.** The change's caller wakes the relay (the
  ``Notifier`` it is handed), so a notice normally lands within one MongoDB
  round trip of the commit; a sweep every ``interval_s`` picks up rows a
  crashed instance left. While MongoDB is down, notices wait in SQL (nothing
  is lost) and arrive when it is back. Notices of one user keep their order
  within one relay pass; notices relayed at the same moment by two instances
  may be numbered in either order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import trio

from sandcat.domain.notices import Notifier
from sandcat.errors import Unavailable
from sandcat.store.inbox import Notice, NoticeOutbox

log = logging.getLogger(__name__)

#: Rows moved per round trip.
_BATCH = 100


class KeyedInbox(Protocol):
    async def deliver(self, keyed: Sequence[tuple[str, Notice]]) -> list[Notice]:
        """Store each notice once per key; the stored notices, with their inbox nseq."""


def outbox_key(notice: Notice) -> str:
    return f"sql:{notice.user}:{notice.nseq}"


class InboxRelay:
    """The ``Notifier`` handed to the stores' callers, and the task that relays."""

    def __init__(self, outbox: NoticeOutbox, inbox: KeyedInbox, *, notifier: Notifier) -> None:
        self._outbox = outbox
        self._inbox = inbox
        self._notifier = notifier
        self._wake = trio.Event()
        self.relayed = 0

    def publish(self, notices: Sequence[Notice]) -> None:
        """Committed notices are waiting in the outbox: relay them now."""
        if notices:
            self._wake.set()

    async def relay_pending(self) -> int:
        """Move everything waiting into the inbox and push it; how many notices."""
        moved = 0
        while batch := await self._outbox.pending(_BATCH):
            stored = await self._inbox.deliver([(outbox_key(n), n) for n in batch])
            await self._outbox.remove(batch)
            self._notifier.publish(stored)
            moved += len(batch)
            if len(batch) < _BATCH:
                break
        self.relayed += moved
        return moved

    async def run(
        self, *, interval_s: float, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Relay on every wake-up and every ``interval_s``, until cancelled."""
        task_status.started()
        while True:
            with trio.move_on_after(interval_s):
                await self._wake.wait()
            self._wake = trio.Event()
            try:
                await self.relay_pending()
            except Unavailable as exc:
                # The rows stay in SQL; the next wake-up or sweep retries them.
                log.warning("inbox relay: %s; retrying later", exc.message)
                await trio.sleep(min(interval_s, 1.0))
