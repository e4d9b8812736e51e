"""The history of a chaos run: every send, every receipt, every read, and the final state.

The model is Jepsen's (reliability reference §4.1): each send attempt is an
operation that is invoked and then completes as ``ok`` (acked with a seq and
mid), ``fail`` (refused with a code that guarantees nothing was stored) or
``info`` (indeterminate: the connection died, the reply timed out, or the
server answered a retryable ``unavailable``, which a store timeout can give
for a commit that landed after all). An operation still open when the
history is checked counts as ``info``. Resends of a send are further
operations with the same ``cmid``.

Receipts are what a device saw, before any dedupe: each push, each message
in a PULL reply, and the sender's own ack. Head reads are the ``max_seq`` a
SYNC or PULL reported for a conversation, with when the read was invoked and
answered. Checkpoints are ground-truth heads read straight from the database
around each fault. The final state is every stored message, read back after
the run.

This module only records; ``checker.py`` judges. It imports nothing from the
server, so a history can be built by hand in unit tests.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: ``(user, device)``.
DeviceKey = tuple[str, str]
Outcome = Literal["ok", "fail", "info"]
Source = Literal["push", "pull", "ack"]

#: ERR codes that promise the request stored nothing. ``unavailable`` is not
#: one: the persister fails a batch whose commit timed out, and that commit may
#: still land; the client resends with the same cmid to learn the truth.
DEFINITE_FAILURES = frozenset(
    {"forbidden", "not_found", "bad_request", "bad_frame", "too_large", "rate_limited"}
)


@dataclass(slots=True)
class SendOp:
    """One attempt to send (the first, or a resend with the same cmid)."""

    op: int
    user: str
    device: str
    cid: str
    cmid: str
    content: str
    invoked: float
    #: Which gateway the attempt went through (for the report).
    instance: str = ""
    outcome: Outcome | None = None
    seq: int | None = None
    mid: str | None = None
    code: str | None = None
    completed: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user, self.cid, self.cmid)

    @property
    def result(self) -> Outcome:
        """The outcome, with an open operation as ``info``."""
        return self.outcome or "info"


@dataclass(frozen=True, slots=True)
class Receipt:
    """A message a device saw at ``(cid, seq)``."""

    device: DeviceKey
    source: Source
    cid: str
    seq: int
    mid: str
    sender: str
    content: str
    at: float
    #: The gateway the device was connected to.
    instance: str = ""
    #: Which of the device's connections it came on (1 for the first).
    connection: int = 0


@dataclass(frozen=True, slots=True)
class HeadRead:
    """The ``max_seq`` of ``cid`` a read reported; invoked and answered at these times."""

    device: DeviceKey
    cid: str
    max_seq: int
    invoked: float
    completed: float


@dataclass(frozen=True, slots=True)
class Stored:
    """A message in the final state."""

    cid: str
    seq: int
    mid: str
    sender: str
    cmid: str
    content: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Ground-truth ``max_seq`` per conversation at one moment (before/after a fault)."""

    label: str
    heads: Mapping[str, int]


@dataclass(slots=True)
class History:
    """Everything one chaos run recorded; see the module docstring."""

    #: Conversation -> its members (user ids).
    members: dict[str, frozenset[str]] = field(default_factory=dict)
    #: User -> the devices it runs.
    devices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ops: list[SendOp] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    heads: list[HeadRead] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    #: The final state per conversation, and its ``max_seq`` and ``min_seq``.
    final: dict[str, list[Stored]] = field(default_factory=dict)
    final_max: dict[str, int] = field(default_factory=dict)
    final_min: dict[str, int] = field(default_factory=dict)
    #: Devices that were connected when the run quiesced: they must converge (I7).
    online: set[DeviceKey] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def invoke(
        self, user: str, device: str, cid: str, cmid: str, content: str, instance: str = ""
    ) -> SendOp:
        op = SendOp(next(self._ids), user, device, cid, cmid, content, time.monotonic(), instance)
        self.ops.append(op)
        return op

    def ok(self, op: SendOp, seq: int, mid: str) -> None:
        op.outcome, op.seq, op.mid, op.completed = "ok", seq, mid, time.monotonic()
        self.receipt(
            (op.user, op.device), "ack", op.cid, seq, mid, op.user, op.content, op.instance
        )

    def fail(self, op: SendOp, code: str) -> None:
        """An ERR reply: ``fail`` if its code is definite, else ``info``."""
        op.outcome = "fail" if code in DEFINITE_FAILURES else "info"
        op.code, op.completed = code, time.monotonic()

    def info(self, op: SendOp, reason: str) -> None:
        op.outcome, op.code, op.completed = "info", reason, time.monotonic()

    def receipt(
        self,
        device: DeviceKey,
        source: Source,
        cid: str,
        seq: int,
        mid: str,
        sender: str,
        content: str,
        instance: str = "",
        connection: int = 0,
    ) -> None:
        self.receipts.append(
            Receipt(
                device,
                source,
                cid,
                seq,
                mid,
                sender,
                content,
                time.monotonic(),
                instance,
                connection,
            )
        )

    def head(self, device: DeviceKey, cid: str, max_seq: int, invoked: float) -> None:
        self.heads.append(HeadRead(device, cid, max_seq, invoked, time.monotonic()))

    def conversations_of(self, user: str) -> list[str]:
        return sorted(cid for cid, users in self.members.items() if user in users)

    def counts(self, since: int = 0) -> dict[str, int]:
        """Operations by outcome (attempts) and distinct cmids acked, for the report;
        the operations from index ``since`` on (one scenario's), receipts all."""
        ops = self.ops[since:]
        by = {"ok": 0, "fail": 0, "info": 0}
        for op in ops:
            by[op.result] += 1
        acked = {op.key for op in ops if op.outcome == "ok"}
        return {
            "attempts": len(ops),
            "sends": len({op.key for op in ops}),
            "acked": len(acked),
            **by,
            "receipts": len(self.receipts),
            "pushes": sum(r.source == "push" for r in self.receipts),
            "pulled": sum(r.source == "pull" for r in self.receipts),
            "stored": sum(len(stored) for stored in self.final.values()),
        }
