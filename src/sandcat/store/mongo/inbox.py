"""The inbox in MongoDB (see ``sandcat.store.inbox`` for the contract), without transactions.

Three collections: ``inbox`` (one document per notice; ``_id`` is the
notice's idempotency key, and a unique index on ``(user, nseq)``),
``inbox_heads`` (``_id`` = user, ``max`` = the highest nseq handed out) and
``inbox_acks`` (one document per device: how far it has acknowledged).

nseq stays gap-free and never reused with single-document writes only:

- **insert, then advance.** A notice is inserted with ``nseq = head + 1``;
  the unique ``(user, nseq)`` index is the lock. Whoever loses the race (or
  finds a notice a crashed writer left behind, inserted but never counted in
  the head) gets a duplicate key, moves the head up to the highest notice and
  tries the next number. Only after the insert does the head advance
  (``$max``, so it never moves back). A crash between the two steps leaves a
  notice above the head, which every reader counts (``head`` is the larger
  of the two) and the next writer repairs: no number is skipped.
- **repair before delete.** Acks and expiry delete notices; before they do,
  they raise the head to the highest nseq they are about to delete, so a
  number is never handed out twice.
- **idempotent by key.** A notice posted again with the same key (a retry
  after a crash, or two instances relaying the same outbox row) hits the
  ``_id`` index and the stored notice is returned instead of a second one.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from typing import Any

import pymongo
from pymongo.errors import DuplicateKeyError

from sandcat.store.inbox import InboxPage, NewNotice, Notice
from sandcat.store.mongo.client import Documents, MongoClient

#: Rounds of the insert race one notice may lose before giving up (each loss
#: means another writer succeeded, so this only runs out under a storm).
_ATTEMPTS = 64


def _ack_id(user: str, device: str) -> str:
    return f"{len(user)}:{user}:{device}"


def _notice(doc: dict[str, Any]) -> Notice:
    return Notice(
        str(doc["user"]), int(doc["nseq"]), str(doc["type"]), dict(doc["data"]), int(doc["created"])
    )


def _top(db: Documents, user: str) -> int:
    """The highest nseq among the user's stored notices (0 if none)."""
    doc = db.inbox.find_one({"user": user}, {"nseq": 1}, sort=[("nseq", pymongo.DESCENDING)])
    return 0 if doc is None else int(doc["nseq"])


def _counted(db: Documents, user: str) -> int:
    doc = db.inbox_heads.find_one({"_id": user})
    return 0 if doc is None else int(doc["max"])


def _head(db: Documents, user: str) -> int:
    return max(_counted(db, user), _top(db, user))


def _advance(db: Documents, user: str, nseq: int) -> None:
    db.inbox_heads.update_one({"_id": user}, {"$max": {"max": nseq}}, upsert=True)


def _acked(db: Documents, user: str, device: str) -> int:
    doc = db.inbox_acks.find_one({"_id": _ack_id(user, device)})
    return 0 if doc is None else int(doc["upto"])


def insert_notice(db: Documents, new: NewNotice, *, key: str, now_ms: int) -> Notice:
    """Store ``new`` under ``key`` with the user's next nseq (or return the notice
    already stored under ``key``)."""
    data = dict(new.data)
    for _ in range(_ATTEMPTS):
        nseq = _counted(db, new.user) + 1
        doc = {
            "_id": key,
            "user": new.user,
            "nseq": nseq,
            "type": new.type,
            "data": data,
            "created": now_ms,
        }
        try:
            db.inbox.insert_one(doc)
        except DuplicateKeyError:
            stored = db.inbox.find_one({"_id": key})
            if stored is not None:
                _advance(db, new.user, int(stored["nseq"]))
                return _notice(stored)
            # Someone holds this nseq (a racing writer, or a crashed one's notice):
            # count it and try the next number.
            _advance(db, new.user, max(nseq, _top(db, new.user)))
            continue
        _advance(db, new.user, nseq)
        return Notice(new.user, nseq, new.type, data, now_ms)
    raise RuntimeError(f"inbox of {new.user}: lost the nseq race {_ATTEMPTS} times")


def prepare(db: Documents) -> None:
    """Create the indexes (idempotent)."""
    db.inbox.create_index([("user", 1), ("nseq", 1)], unique=True, name="user_nseq")
    db.inbox.create_index([("created", 1)], name="created")


class MongoInboxStore:
    """``InboxStore`` over MongoDB. Call ``prepare`` once before use."""

    def __init__(self, client: MongoClient) -> None:
        self._client = client

    async def prepare(self) -> None:
        await self._client.run(prepare)

    async def post(self, notices: Sequence[NewNotice], *, now_ms: int) -> list[Notice]:
        # Each notice gets a fresh key: a system notice posted twice is two notices.
        keyed = [(new, secrets.token_hex(12)) for new in notices]
        return await self._client.run(
            lambda db: [insert_notice(db, new, key=key, now_ms=now_ms) for new, key in keyed]
        )

    async def deliver(self, keyed: Sequence[tuple[str, Notice]]) -> list[Notice]:
        """Store notices written elsewhere first (the relational outbox), each under its
        key, keeping their type, data and time; idempotent per key. The stored
        notices, with this inbox's nseqs."""

        def insert(db: Documents) -> list[Notice]:
            return [
                insert_notice(db, NewNotice(n.user, n.type, n.data), key=key, now_ms=n.created_at)
                for key, n in keyed
            ]

        return await self._client.run(insert)

    async def pull(self, user: str, device: str, *, after: int | None, limit: int) -> InboxPage:
        def select(db: Documents) -> InboxPage:
            start = _acked(db, user, device) if after is None else after
            docs = list(
                db.inbox.find({"user": user, "nseq": {"$gt": start}})
                .sort("nseq", pymongo.ASCENDING)
                .limit(limit + 1)
            )
            notices = tuple(_notice(doc) for doc in docs[:limit])
            return InboxPage(notices, len(docs) > limit, _head(db, user))

        return await self._client.run(select)

    async def ack(self, user: str, device: str, upto: int, *, live_devices: Collection[str]) -> int:
        devices = sorted({*live_devices, device})

        def record(db: Documents) -> int:
            head = _head(db, user)
            _advance(db, user, head)  # repair before anything is deleted
            position = max(_acked(db, user, device), min(upto, head))
            db.inbox_acks.update_one(
                {"_id": _ack_id(user, device)}, {"$max": {"upto": position}}, upsert=True
            )
            floor = min(_acked(db, user, other) for other in devices)
            db.inbox.delete_many({"user": user, "nseq": {"$lte": floor}})
            return position

        return await self._client.run(record)

    async def head(self, user: str) -> int:
        return await self._client.run(lambda db: _head(db, user))

    async def expire(self, *, before_ms: int) -> int:
        def delete(db: Documents) -> int:
            tops = db.inbox.aggregate(
                [
                    {"$match": {"created": {"$lt": before_ms}}},
                    {"$group": {"_id": "$user", "top": {"$max": "$nseq"}}},
                ]
            )
            deleted = 0
            for group in tops:
                user, top = str(group["_id"]), int(group["top"])
                _advance(db, user, top)  # repair before anything is deleted
                deleted += db.inbox.delete_many(
                    {"user": user, "nseq": {"$lte": top}, "created": {"$lt": before_ms}}
                ).deleted_count
            return deleted

        return await self._client.run(delete)
