"""``python -m tests.chaos.broken BREAK serve …``: a deliberately broken build, for
the negative controls (``test_negative_controls.py``).

The switch is this entry point's first argument, and nothing else: no
configuration key or environment variable can turn a break on in a real
server. Every build started here, ``none`` included, also suffers three failures
a correct server must survive, so that the breaks have something to break:

- one append transaction in ten rolls back after all its statements ran (a
  commit that failed); the senders get ``unavailable`` and resend;
- one append in ten commits and then reports ``unavailable`` (the commit's reply
  was lost, as when the store timeout fires during a commit); the senders
  resend, and the resend must find what was committed;
- one outbox relay round in three (of the rounds that find rows) publishes its
  rows and then fails before deleting them, so they are published again (the bus
  is at least once).

The breaks, one guarantee each:

- ``ack-before-commit``: a batch is acked whatever its commit does (the rolled
  back batch is acked: acked loss, I1; its seqs are given out again, I4);
- ``seq-outside-tx``: seqs are allocated in a transaction of their own, so a
  rolled-back batch leaves its seqs consumed and never filled (I3);
- ``dedupe-off``: neither the store nor the recent-ack cache looks a resend's
  cmid up, and the unique index on ``(sender, cid, cmid)`` is dropped (a resend
  after a lost reply is stored twice, I2);
- ``consumer-dedupe-off``: the consumer pushes every event it reads, repeats
  included (a device is pushed one message twice on one connection, I10). In
  this build the bus also repeats every relay round that has rows (published
  once more before the round's own publish): the one-round-in-three repeat
  alone may fall on rows no online device receives from another instance
  (the cast's group and friend events on instance 0, relayed before any
  device connects) or come too seldom on a loaded machine, and a control must
  certainly produce the violation it expects.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import tomllib
from collections.abc import Sequence
from typing import Any

import psycopg

from sandcat.bus import Bus
from sandcat.bus.bus import Record
from sandcat.cli import main
from sandcat.errors import StoreUnavailable
from sandcat.metrics import ServerMetrics
from sandcat.pipeline import consumer, publisher, sequencer
from sandcat.store.messages import Appended, NewMessage, Refused
from sandcat.store.outbox import Outbox
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.messages import SqlMessageStore
from tests.passwords import FAST_PASSWORDS

BREAKS = ("none", "ack-before-commit", "seq-outside-tx", "dedupe-off", "consumer-dedupe-off")
EVERY = 10


class _Rollback(Exception):
    """Raised inside an append transaction to roll it back after its statements."""


_appends = itertools.count(1)
_relays = itertools.count(1)
#: The store's dedupe lookup (``store/postgres/append.py``, step 3).
_DEDUPE_QUERY = "FROM messages WHERE (sender, cid, cmid) IN"


class _NoDedupe:
    """A connection whose dedupe lookup finds nothing."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, query: Any, params: Any = None) -> Any:
        if isinstance(query, str) and query.startswith("SELECT") and _DEDUPE_QUERY in query:
            return iter(())
        return self._conn.execute(query, params)


def _patch(broken: str) -> None:
    def append_fn(
        store: SqlMessageStore,
        conn: Any,
        batch: Sequence[NewMessage],
        now_ms: int,
        open_direct: bool,
    ) -> list[Appended | Refused]:
        if broken == "dedupe-off":
            conn = _NoDedupe(conn)
        return store._append(Tx(conn, store._dialect), batch, now_ms, open_direct)

    async def append(
        self: SqlMessageStore,
        batch: Sequence[NewMessage],
        *,
        now_ms: int,
        open_direct: bool,
    ) -> list[Appended | Refused]:
        n = next(_appends)
        if n % EVERY == EVERY // 2:
            done: list[list[Appended | Refused]] = []
            heads: list[tuple[str, int]] = []

            def rolled_back(conn: Any) -> None:
                done.append(append_fn(self, conn, batch, now_ms, open_direct))
                cids = sorted({new.cid for new in batch})
                heads.extend(
                    conn.execute(
                        "SELECT cid, max_seq FROM conversations WHERE cid = ANY(%s)", (cids,)
                    ).fetchall()
                )
                raise _Rollback

            with contextlib.suppress(_Rollback):
                await self._db.write(rolled_back)
            if broken == "seq-outside-tx":
                # The allocation had committed on its own: it survives the rollback.
                def allocate(conn: Any) -> None:
                    for cid, head in heads:
                        conn.execute(
                            "UPDATE conversations SET max_seq = GREATEST(max_seq, %s) "
                            "WHERE cid = %s",
                            (head, cid),
                        )

                await self._db.write(allocate)
            if broken == "ack-before-commit" and done:
                return done[0]
            raise StoreUnavailable("injected: the append transaction rolled back")
        outcomes = await self._db.write(
            lambda conn: append_fn(self, conn, batch, now_ms, open_direct)
        )
        if self._appended is not None:
            self._appended()
        if n % EVERY == 0:
            raise StoreUnavailable("injected: the commit's reply was lost")
        return outcomes

    SqlMessageStore.append = append  # type: ignore[method-assign]

    original_relay = publisher._relay

    async def relay(outbox: Outbox, bus: Bus, batch: int, metrics: ServerMetrics) -> int:
        # Counted over rounds that have rows: under load most rounds find the outbox
        # empty, and a count over every round could miss the rows for the whole run.
        rows = await outbox.store.pending(outbox.owner, limit=batch)
        if rows and next(_relays) % 3 == 0:
            await bus.publish([Record(row.cid, row.payload) for row in rows])
            raise StoreUnavailable("injected: published, then the delete failed")
        if rows and broken == "consumer-dedupe-off":
            # Every event read twice: each online device on another instance than
            # the sender's (the cast puts one on each) is pushed it twice.
            await bus.publish([Record(row.cid, row.payload) for row in rows])
        return await original_relay(outbox, bus, batch, metrics)

    publisher._relay = relay

    if broken == "dedupe-off":
        sequencer.RecentAcks.get = lambda self, key: None  # type: ignore[method-assign]
    if broken == "consumer-dedupe-off":
        consumer.RecentKeys.add = lambda self, key: True  # type: ignore[method-assign]


def _drop_cmid_indexes(argv: list[str]) -> None:
    config = argv[argv.index("--config") + 1]
    with open(config, "rb") as file:
        url = tomllib.load(file)["backends"]["database_url"]
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT indexname FROM pg_indexes "
                "WHERE tablename LIKE 'messages%' AND indexname LIKE '%\\_cmid'"
            )
        ]
        for name in names:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')  # names from pg_indexes


if __name__ == "__main__":
    broken, argv = sys.argv[1], sys.argv[2:]
    if broken not in BREAKS:
        sys.exit(f"unknown break {broken!r}; one of {', '.join(BREAKS)}")
    _patch(broken)
    if broken == "dedupe-off":
        _drop_cmid_indexes(argv)
    sys.exit(main(argv, passwords=FAST_PASSWORDS))
