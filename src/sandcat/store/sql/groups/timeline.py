"""The system messages of a group's timeline, written inside a group change.

``Timeline`` locks the group's conversation row for the change (group
changes and sends of one group are serialised on it), hands out the next
seq before the change is made (joins and removals record it), and ``record``
writes the system message (kind 9, body ``{event, data}``, protocol/SPEC.md §9)
with that seq, the change's inbox notices, the outbox row in cluster mode,
and last the SYNC version (it is the lock writers serialise on, see
``store.sql.conversations``) — the order the message store uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgpack

from sandcat.errors import NotFound
from sandcat.ids import group_cid, new_id, new_ids
from sandcat.store.conversations import note_system_message
from sandcat.store.groups import Change, SystemEntry
from sandcat.store.inbox import NewNotice
from sandcat.store.messages import StoredMessage
from sandcat.store.sql._tx import Tx

#: The content kind of system messages (protocol/SPEC.md §9).
SYSTEM_KIND = 9
#: The sending device of system messages (one no client is likely to call itself:
#: the push skips the sender's device of that name).
SYSTEM_DEVICE = "_system"


class Timeline:
    """The group's conversation, locked for one change."""

    def __init__(self, tx: Tx, group_id: str) -> None:
        self.tx = tx
        self.cid = group_cid(group_id)
        row = tx.one(
            "SELECT max_seq FROM conversations WHERE cid = ?" + tx.dialect.for_update, self.cid
        )
        if row is None:
            raise NotFound("no such group")
        #: The seq the change's system message will have.
        self.seq = int(row[0]) + 1
        #: Members whose conversation rows the change touched (SYNC reports them).
        self.touched: set[str] = set()

    def record(
        self,
        actor: str,
        event: str,
        data: Mapping[str, object],
        *,
        now_ms: int,
        notices: Sequence[NewNotice] = (),
    ) -> Change:
        """Write the system message and the notices; what to push after commit."""
        tx = self.tx
        body = msgpack.packb({"event": event, "data": dict(data)}, use_bin_type=True)
        message = StoredMessage(
            cid=self.cid,
            seq=self.seq,
            mid=new_ids(1, now_ms)[0],
            sender=actor,
            device=SYSTEM_DEVICE,
            cmid=f"sys-{new_id()}",
            kind=SYSTEM_KIND,
            body=body,
            ts=now_ms,
        )
        tx.run("UPDATE conversations SET max_seq = ? WHERE cid = ?", self.seq, self.cid)
        tx.run(
            "INSERT INTO messages (cid, seq, mid, sender, device, cmid, kind, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message.cid,
            message.seq,
            message.mid,
            message.sender,
            message.device,
            message.cmid,
            message.kind,
            message.body,
            tx.time_in(now_ms),
        )
        note_system_message(tx, message)  # the actor has read it; it unhides (store.conversations)
        # Members at commit, and those whose window ends with this very message
        # (the removed, the leaver, everyone of a dismissed group).
        members = tuple(
            user
            for (user,) in tx.all(
                "SELECT user_id FROM conversation_members "
                "WHERE cid = ? AND (until_seq IS NULL OR until_seq >= ?)",
                self.cid,
                self.seq,
            )
        )
        posted = tx.post(notices, now_ms)
        tx.publish(message, members)
        version = tx.bump_version()
        tx.run("UPDATE conversations SET version = ? WHERE cid = ?", version, self.cid)
        for user in sorted(self.touched):
            tx.run(
                "UPDATE conversation_members SET version = ? WHERE cid = ? AND user_id = ?",
                version,
                self.cid,
                user,
            )
        return Change(SystemEntry(message, members), posted)
