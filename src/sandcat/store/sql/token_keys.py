"""The access-token signing keys, kept in the relational database.

Every instance sharing a database reads the same keys, so a token signed by
one is accepted by the others with no secret configured by hand. Written once
for SQLite and PostgreSQL over ``store.sql._tx.Tx``. The first key has id 1: its
primary key is the lock that makes instances starting together agree on one
key (``INSERT ... ON CONFLICT DO NOTHING``, then read what won).
"""

from __future__ import annotations

from dataclasses import dataclass

from sandcat.errors import Conflict
from sandcat.store.sql._tx import SqlStore, Tx


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: int
    secret: bytes
    #: Signs from this time on (wire ms); the first key: from the start.
    active_at_ms: int


class TokenKeyStore(SqlStore):
    """The key table over a database and its dialect."""

    async def ensure(self, secret: bytes, *, now_ms: int) -> list[StoredKey]:
        """Store ``secret`` as key 1 unless a key 1 exists; every key, oldest first."""

        def insert(tx: Tx) -> list[StoredKey]:
            tx.run(
                "INSERT INTO token_keys (id, secret, active_at, created_at) "
                "VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                secret.hex(),
                tx.time_in(0),
                tx.time_in(now_ms),
            )
            return _keys(tx)

        return await self._write(insert)

    async def keys(self) -> list[StoredKey]:
        """Every stored key, oldest first."""
        return await self._read(_keys)

    async def add(
        self, secret: bytes, *, active_at_ms: int, now_ms: int, forget_before_ms: int
    ) -> tuple[StoredKey, list[StoredKey]]:
        """Add the next key, signing from ``active_at_ms``; the new key and every key
        kept. Keys whose successor became active before ``forget_before_ms`` are
        deleted (key 1 stays: ``Tokens`` never accepts a superseded key anyway).
        ``Conflict`` if another rotation added the same id at the same time."""

        def insert(tx: Tx) -> tuple[StoredKey, list[StoredKey]]:
            existing = _keys(tx)
            if not existing:
                raise Conflict("no token key yet: start the server once first")
            new = StoredKey(existing[-1].id + 1, secret, active_at_ms)
            tx.run(
                "INSERT INTO token_keys (id, secret, active_at, created_at) VALUES (?, ?, ?, ?)",
                new.id,
                secret.hex(),
                tx.time_in(active_at_ms),
                tx.time_in(now_ms),
            )
            kept = [*existing, new]
            for key, successor in zip(existing, kept[1:], strict=False):
                if key.id != 1 and successor.active_at_ms < forget_before_ms:
                    tx.run("DELETE FROM token_keys WHERE id = ?", key.id)
                    kept.remove(key)
            return new, kept

        return await self._write(insert)


def _keys(tx: Tx) -> list[StoredKey]:
    rows = tx.all("SELECT id, secret, active_at FROM token_keys ORDER BY id")
    return [StoredKey(int(id_), bytes.fromhex(hexed), tx.time_out(at)) for id_, hexed, at in rows]
